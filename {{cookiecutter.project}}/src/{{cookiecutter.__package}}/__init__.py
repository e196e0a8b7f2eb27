"""{{ cookiecutter.project }}: the model's step code, one container image for every SageMaker job.

``python -m {{ cookiecutter.__package }} preprocess|train|evaluate|serve`` runs one step (see
``__main__``). Importing the package imports nothing heavy, so ``--help`` and error paths stay fast.
"""

__version__ = "0.1.0"
