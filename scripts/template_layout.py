"""Where the template keeps the generated repo: the one name Python code uses for that folder.

cookiecutter renders this folder's name into the project directory and creates it before
``pre_gen_project`` runs (cookiecutter issue #821). A bare ``{{cookiecutter.project}}`` made an
empty answer render to the output directory itself ("directory already exists": the hook never
ran) and ``a/b`` create ``a/`` the failed render then left behind. The name below renders to the
project only when its package name is an identifier (so the project is one plain path component);
any other answer, which the hook refuses, gets a placeholder directory that cookiecutter removes
when the hook fails. Windows-safe characters only: quotes are single, no ``|`` filter.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PROJECT_FOLDER = (
    "{{cookiecutter.project if cookiecutter.__package.isidentifier() "
    "else '_refused_project_name_'}}"
)
PROJECT_TEMPLATE = TEMPLATE_DIR / PROJECT_FOLDER
