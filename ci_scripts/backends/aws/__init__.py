"""The aws world: boto3 and the sagemaker SDK against a real (or moto) account.

``backend.AwsBackend`` composes the pieces in this package (registry, pipeline, endpoints,
monitoring); each module imports only ``ci_scripts.backends.base`` and its siblings, never
``ci_scripts.backends.local``. Kept empty so importing one piece does not import boto3 for all.
"""
