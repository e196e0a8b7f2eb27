"""The platform's SageMaker Pipelines (sagemaker SDK v3), built offline from the project's facts.

``steps`` holds the training pipeline's step builders, which the model repo's
``pipelines/pipeline.py`` composes (and extends with its own steps); ``monitoring`` and ``batch``
are the platform's own pipelines, which ci_scripts builds by itself; ``settings`` turns the
project's ``[tool.sagemaker-gitops]`` table and its model's declarations into the names a
definition needs; ``sdk`` keeps the SDK from calling AWS while a definition is built. Importing
this package is free: the SDK loads only when a pipeline is built.
"""
