"""The training pipeline, as a SageMaker Pipeline definition (sagemaker SDK v3).

``pipeline.py`` wires the steps, ``settings.py`` holds the names it needs (read from
``[tool.sagemaker-gitops]`` in pyproject.toml), ``sdk.py`` keeps the SDK from calling AWS while a
definition is built. The step code in ``src/`` never imports this package, so the image does not
need the SDK; importing this package is free, the SDK loads only when a pipeline is built.
"""
