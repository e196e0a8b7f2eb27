"""``ci_scripts data adopt FILE --target COLUMN``: your CSV as the model's dataset, in one command.

It writes data/dataset.csv (the adopted columns), src/<package>/schema.py (each feature's kind,
the target and its classes), data/batch/sample.csv for a batch deployment, and turns the bias
facet off when it named a feature the new data lacks; then it says what to run next. Nothing is
written unless every column passes (ci_scripts.dataset says why one does not, one line each).
"""

from pathlib import Path
from typing import Annotated

import typer

from ci_scripts.errors import CIError, one_line_errors

app = typer.Typer(help="Bring your own data: adopt a CSV as the model's dataset.")


def _root(ctx: typer.Context) -> Path:
    return Path(getattr(ctx.obj, "project_dir", None) or ".").resolve()


@app.command("adopt")
def adopt(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The CSV to adopt (a header row, then rows).")],
    target: Annotated[str, typer.Option(help="The column the model predicts.")],
    problem_type: Annotated[
        str | None,
        typer.Option(help="Default: the repo's model (PROBLEM_TYPE in model.py)."),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(help="A column to leave out (repeatable): an ID, free text, a leak."),
    ] = None,
) -> None:
    """Infer the schema of FILE, check every column, write the dataset and schema.py."""
    from ci_scripts import dataset, model_contract
    from ci_scripts.project import ProjectConfig

    with one_line_errors():
        project = ProjectConfig.load(_root(ctx))
        contract = model_contract.load(project)
        wanted = problem_type or contract.problem_type
        if wanted != contract.problem_type:
            raise CIError(
                f"--problem-type {wanted}: this repo's model is {contract.problem_type} "
                f"({contract.source}: PROBLEM_TYPE); render the template with "
                f"problem_type={wanted}, or change model.py first"
            )
        try:
            adoption = dataset.adopt(file, target, wanted, tuple(drop or ()))
        except dataset.AdoptError as exc:
            for reason in exc.reasons[:-1]:
                typer.echo(f"error: {reason}", err=True)
            raise CIError(exc.reasons[-1]) from None
        schema_py = project.root / "src" / project.package / "schema.py"
        pyproject = project.root / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        facet = project.bias_facet
        dataset.write_dataset(adoption, project.root / dataset.DATASET)
        schema_py.write_text(dataset.schema_source(adoption, file.name), encoding="utf-8")
        notes = []
        if facet and facet not in adoption.kinds:
            pyproject.write_text(dataset.bias_off(text), encoding="utf-8")
            notes.append(
                f"bias: off (the facet {facet!r} is not a column of {file.name}); name one in "
                "pyproject.toml [tool.sagemaker-gitops.bias]"
            )
        if project.deployment == "batch":
            sample = dataset.write_batch_sample(project.root, adoption.target)
            notes.append(f"{sample.relative_to(project.root)}: rewritten from the new dataset")
    kinds = ", ".join(f"{name} ({kind})" for name, kind in adoption.kinds.items())
    typer.echo(
        f"adopted {file}: {len(adoption.rows)} rows; target {adoption.target!r} "
        f"({adoption.problem_type}, classes {adoption.classes}); features: {kinds}"
    )
    if adoption.positive_class is not None:
        typer.echo(
            f"positive class: {adoption.positive_class!r} (its probability is scored; change "
            "POSITIVE_CLASS in schema.py if the other class is the one to find)"
        )
    typer.echo(f"wrote {dataset.DATASET.as_posix()} and {schema_py.relative_to(project.root)}")
    for note in notes:
        typer.echo(note)
    typer.echo(
        "next: make test (the platform's contract check trains your model on it), then "
        "python -m ci_scripts run-pipeline --wait"
    )
