"""This repo's training pipeline (pipeline.py), composed from ci_scripts.pipelines.steps."""
