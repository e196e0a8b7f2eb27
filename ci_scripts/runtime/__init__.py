"""The container's jobs: the code every SageMaker job of the project's one image runs.

``python -m ci_scripts.runtime <command>`` is the image's ENTRYPOINT: training runs
``<image> train``, hosting ``<image> serve``, processing jobs name their command (preprocess,
evaluate, baseline, bias, explain, monitor, batch_check, batch_capture). The local backend runs
the same commands as subprocesses. Each step imports the team's model and schema through
:mod:`ci_scripts.runtime.team`; nothing here imports the CLI's dependencies (typer, rich,
jsonschema, the sagemaker SDK), which the image does not install.
"""
