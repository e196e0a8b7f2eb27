"""sagemaker-gitops CI scripts: the one CLI that GitHub Actions workflows (and people) call.

Kept free of heavy imports so ``python -m ci_scripts --help`` stays as fast as importing boto3.
"""

__version__ = "0.1.0"
