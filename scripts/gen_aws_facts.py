"""Regenerate ``ci_scripts/aws_facts.json``: the AWS facts the hooks and ci_scripts check against.

The hooks run under ``uvx cookiecutter`` with nothing but the standard library, so they cannot ask
botocore which regions host SageMaker or which instance types a training job takes. This script
reads those facts from the installed botocore's own data (the service models and endpoint data
every AWS SDK call is validated against) and writes them to a JSON file the template ships.
``tests/test_aws_facts.py`` fails when the committed file and the installed botocore disagree.

Run it with ``make aws-facts`` (or ``python -m scripts.gen_aws_facts``; ``--check`` only compares).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FACTS_PATH = Path(__file__).resolve().parents[1] / "ci_scripts" / "aws_facts.json"

# The ARNs ci_scripts builds are ``arn:aws:...``: only the commercial partition is supported.
PARTITION = "aws"

# Instance types per job kind, each the enum of the shape the API validates that field with.
INSTANCE_TYPE_SHAPES = {
    "processing": "ProcessingInstanceType",  # CreateProcessingJob ProcessingResources
    "training": "TrainingInstanceType",  # CreateTrainingJob ResourceConfig
    "endpoint": "ProductionVariantInstanceType",  # CreateEndpointConfig ProductionVariants
    "transform": "TransformInstanceType",  # CreateTransformJob TransformResources
}

# Name limits of the resources named after the project: (service, operation, input member).
NAME_SHAPES = {
    "sagemaker_endpoint": ("sagemaker", "CreateEndpoint", "EndpointName"),
    "sagemaker_model_package_group": (
        "sagemaker",
        "CreateModelPackageGroup",
        "ModelPackageGroupName",
    ),
    "sagemaker_pipeline": ("sagemaker", "CreatePipeline", "PipelineName"),
    "ecr_repository": ("ecr", "CreateRepository", "repositoryName"),
    "iam_role": ("iam", "CreateRole", "RoleName"),
}

# Which ML instance families carry local NVMe instance store. SageMaker refuses a KmsKeyId /
# VolumeKmsKeyId with them ("Certain Nitro-based instances include local storage ... You can't
# request a KmsKeyId when using an instance type with local storage": API_CreateEndpointConfig,
# API_ResourceConfig, API_ProcessingClusterConfig, API_TransformResources in
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/). botocore holds no storage facts, so
# the table is kept here from the EC2 Instance Types guide's "Instance store specifications"
# (https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html, co.html, mo.html, ac.html), and
# every family botocore lists must be in one of the two sets: a new family fails the build until
# someone looks it up (build_facts raises).
INSTANCE_STORE_SOURCE = (
    "https://docs.aws.amazon.com/ec2/latest/instancetypes/ (Instance store specifications)"
)
INSTANCE_STORE_FAMILIES = frozenset(
    {
        "c5d", "c6gd", "m5d", "m6gd", "r5d", "r6gd", "r7gd",  # the "d" variants: NVMe SSD
        "dl1", "g4dn", "g5", "g6", "g6e", "g7e",  # GPUs and Gaudi with NVMe SSD
        "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300", "p6e-gb200",
        "trn1", "trn1n", "trn2",
    }
)  # fmt: skip
EBS_ONLY_FAMILIES = frozenset(
    {
        "c4", "c5", "c5n", "c6g", "c6gn", "c6i", "c6in", "c7g", "c7i", "c7i-flex", "c8g",
        "c8i", "c8i-flex", "m4", "m5", "m6g", "m6i", "m7i", "m7i-flex", "m8g", "m8i",
        "m8i-flex", "r5", "r6g", "r6i", "r7i", "r8g", "r8i", "r8i-flex", "t2", "t3",
        "inf1", "inf2", "p2", "p3", "g7",
    }
)  # fmt: skip


def instance_family(instance_type: str) -> str:
    """``ml.g4dn.xlarge`` -> ``g4dn``."""
    return instance_type.split(".")[1] if instance_type.count(".") == 2 else ""


def instance_store_families(instance_types: dict[str, list[str]]) -> list[str]:
    """The families of ``instance_types`` with local instance store; raise on an unclassified
    family (one botocore added since the table was last checked)."""
    families = {instance_family(t) for types in instance_types.values() for t in types}
    unknown = sorted(families - INSTANCE_STORE_FAMILIES - EBS_ONLY_FAMILIES)
    if unknown:
        raise SystemExit(
            f"gen_aws_facts: instance families {unknown} are in neither INSTANCE_STORE_FAMILIES "
            f"nor EBS_ONLY_FAMILIES; look them up in {INSTANCE_STORE_SOURCE} and add them"
        )
    return sorted(families & INSTANCE_STORE_FAMILIES)


# Written into the file but not compared by ``--check``/the test: a botocore upgrade that changes
# no fact must not fail the build.
INFORMATIONAL_KEYS = ("about", "generated_with_botocore")


def build_facts() -> dict[str, Any]:
    """Read every fact from the installed botocore; no network, no credentials."""
    import botocore
    import botocore.session

    session = botocore.session.Session()
    sagemaker = session.get_service_model("sagemaker")
    names: dict[str, dict[str, Any]] = {}
    for key, (service, operation, member) in NAME_SHAPES.items():
        shape = session.get_service_model(service).operation_model(operation).input_shape
        meta = shape.members[member].metadata
        names[key] = {
            "source": f"{service} {operation}.{member}",
            "min": meta.get("min", 1),
            "max": meta["max"],
            "pattern": meta["pattern"],
        }
    instance_types = {
        kind: sorted(sagemaker.shape_for(shape).enum)
        for kind, shape in INSTANCE_TYPE_SHAPES.items()
    }
    return {
        "about": "Generated by `make aws-facts` (python -m scripts.gen_aws_facts) from botocore's "
        "data; do not edit by hand. Read by hooks/pre_gen_project.py and "
        "ci_scripts/manifest_rules.py.",
        "generated_with_botocore": botocore.__version__,
        "partition": PARTITION,
        "sagemaker_regions": sorted(
            session.get_available_regions("sagemaker", partition_name=PARTITION)
        ),
        "instance_types": instance_types,
        "instance_store": {
            "source": INSTANCE_STORE_SOURCE,
            "families": instance_store_families(instance_types),
        },
        "names": names,
    }


def comparable(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts without the informational keys: what must agree with botocore."""
    return {k: v for k, v in facts.items() if k not in INFORMATIONAL_KEYS}


def dumps(facts: dict[str, Any]) -> str:
    """Stable formatting, so a regeneration only diffs where a fact changed."""
    return json.dumps(facts, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare only; exit 1 when the file is stale"
    )
    args = parser.parse_args(argv)
    facts = build_facts()
    if args.check:
        committed = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
        if comparable(committed) != comparable(facts):
            version = facts["generated_with_botocore"]
            print(
                f"error: {FACTS_PATH.name}: differs from botocore {version}; run `make aws-facts`",
                file=sys.stderr,
            )
            return 1
        return 0
    FACTS_PATH.write_text(dumps(facts), encoding="utf-8")
    print(
        f"wrote {FACTS_PATH} (botocore {facts['generated_with_botocore']}: "
        f"{len(facts['sagemaker_regions'])} regions, "
        + ", ".join(f"{len(v)} {k}" for k, v in facts["instance_types"].items())
        + " instance types)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
