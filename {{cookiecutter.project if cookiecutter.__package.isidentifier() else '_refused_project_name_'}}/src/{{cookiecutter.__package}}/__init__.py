"""{{ cookiecutter.project }}: the model (model.py) and its data (schema.py).

The platform (ci_scripts/) runs them in every SageMaker job of the one image:
``python -m ci_scripts.runtime train|serve|preprocess|...`` imports this package's model and
schema; nothing here imports the platform's step code.
"""

__version__ = "0.1.0"
