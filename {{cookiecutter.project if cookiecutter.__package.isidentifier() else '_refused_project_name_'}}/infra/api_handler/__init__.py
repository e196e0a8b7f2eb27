"""Lambda behind infra/api.yml; `aws cloudformation package` uploads this directory as its code."""
