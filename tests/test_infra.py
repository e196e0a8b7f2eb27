"""The generated repo's CloudFormation: lint-clean, and least privilege where it matters.

Each template is rendered by cookiecutter, linted once with cfn-lint (all files in one run), then
evaluated the way CloudFormation would for every environment and account layout: parameters and
pseudo parameters substituted, conditions decided, Fn::If branches chosen. The assertions read
the resulting concrete policies, so a wrong condition or a stray wildcard fails here.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import cfn_stacks
import pre_commit_hooks
import pytest
from cfnlint.api import ManualArgs, lint_by_config
from distinct_files import distinct_by_content
from option_matrix import COMBINATIONS, COOKIECUTTER_JSON, OPTIONS, PRE_COMMIT_COMBINATIONS
from parsed_files import cfn_template

REGION = "eu-west-1"

# Two renders cover every template branch: realtime + monitoring + API in one account, and
# serverless without monitoring or API across three accounts.
VARIANTS: dict[str, dict[str, str]] = {
    "one-account": {
        "project": "churn-model",
        "github_owner": "my-org",
        "api_gateway": "yes",
        "deployment": "realtime",
        "monitoring": "yes",
        "aws_region": REGION,
    },
    "three-accounts": {
        "project": "fraud-model",
        "github_owner": "acme",
        "github_repo": "fraud-repo",
        "github_owner_id": "4242",
        "github_repo_id": "987654",
        "api_gateway": "no",
        "deployment": "serverless",
        "monitoring": "no",
        "aws_region": REGION,
        "dev_account_id": "111111111111",
        "staging_account_id": "222222222222",
        "prod_account_id": "333333333333",
    },
}

# Actions allowed with Resource "*": none of them supports resource-level permissions.
STAR_ALWAYS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
STAR_MONITORING: set[str] = set()  # the monitor needs no "*" resource beyond STAR_ALWAYS
# destroy and pruning find an environment's models and endpoint configs by name.
STAR_SERVING = {"sagemaker:ListEndpointConfigs", "sagemaker:ListModels"}
# prod's shadow test reads both variants' metrics (GetMetricData has no resource-level permission).
STAR_SERVING |= {"cloudwatch:GetMetricData"}
# Every deploy reads scaling state (a serverless one removes what a realtime config left).
STAR_SCALING = {
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingActivities",
    "application-autoscaling:DescribeScalingPolicies",
}
ENVIRONMENTS = ("dev", "staging", "prod")


# ------------------------------------------------------------------------------- rendering


def bake_answers(context: dict[str, str]) -> dict[str, str]:
    """``context`` as bake_once's answers: the option choices always, other answers only where
    they differ from cookiecutter.json. The one-account variant is then the same answers as its
    option combination, rendered once per session for every test that asks for either."""
    return {
        key: value
        for key, value in context.items()
        if key in OPTIONS or COOKIECUTTER_JSON.get(key) != value
    }


@pytest.fixture(scope="module")
def rendered(bake_once) -> dict[str, Path]:
    """Render each variant once; the value is the generated repository's root."""
    return {name: bake_once(**bake_answers(context)) for name, context in VARIANTS.items()}


@pytest.fixture(scope="module")
def settings(rendered) -> dict[str, dict[str, Any]]:
    """[tool.sagemaker-gitops] of each render: the names ci_scripts will use."""
    return {
        name: tomllib.loads((root / "pyproject.toml").read_text())["tool"]["sagemaker-gitops"]
        for name, root in rendered.items()
    }


def bootstrap(rendered, variant: str) -> dict[str, Any]:
    return cfn_template(rendered[variant] / "infra" / "bootstrap.yml")


def api(rendered) -> dict[str, Any]:
    return cfn_template(rendered["one-account"] / "infra" / "api.yml")


# ------------------------------------------------------------------------------- evaluation


def evaluate(template: dict, parameters: dict[str, str], account: str) -> dict[str, Any]:
    """Resources and Outputs as CloudFormation would create them for these parameters (the IAM
    judge's evaluator); Refs to resources and Fn::GetAtt become "<Name>" / "<Name.Attr>"."""
    return cfn_stacks.evaluate(template, parameters, account, names=False)


def stacks(template: dict, accounts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The three bootstrap stacks, each deployed in its environment's account.

    The OIDC provider is created by the first stack in each account, as infra/README.md says.
    """
    result, seen = {}, set()
    for env in ENVIRONMENTS:
        account = accounts[env]
        first = account not in seen
        seen.add(account)
        params = {"Environment": env, "CreateOIDCProvider": "true" if first else "false"}
        result[env] = evaluate(template, params, account)
    return result


def accounts_of(settings: dict[str, Any]) -> dict[str, str]:
    return dict(settings["accounts"])


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def statements(resources: dict[str, Any]):
    """(resource name, statement) for every policy document statement in ``resources``."""

    def walk(name: str, node: Any):
        if isinstance(node, dict):
            if isinstance(node.get("Statement"), list):
                for statement in node["Statement"]:
                    yield name, statement
            for value in node.values():
                yield from walk(name, value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(name, value)

    for name, resource in resources.items():
        yield from walk(name, resource)


def deploy_role(stack: dict[str, Any]) -> dict[str, Any]:
    roles = [
        r["Properties"]
        for r in stack["Resources"].values()
        if r["Type"] == "AWS::IAM::Role" and "-github-deploy-" in r["Properties"]["RoleName"]
    ]
    assert len(roles) == 1
    return roles[0]


def policy(role: dict[str, Any], name: str) -> list[dict[str, Any]]:
    documents = [p["PolicyDocument"] for p in role["Policies"] if p["PolicyName"] == name]
    assert len(documents) == 1, f"policy {name}"
    return documents[0]["Statement"]


def resource_of_type(stack: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [r["Properties"] for r in stack["Resources"].values() if r["Type"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)} found"
    return found[0]


def bucket_names(stack: dict[str, Any]) -> dict[str, str]:
    """Logical id -> BucketName of every bucket in ``stack``."""
    return {
        name: r["Properties"]["BucketName"]
        for name, r in stack["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket"
    }


# ------------------------------------------------------------------------------- tests


@pytest.mark.slow  # ~30 s of cfn-lint: started first, so it does not end the run on one worker
def test_every_rendered_template_is_cfn_lint_clean(rendered, bake_once):
    """The two variants (checked in depth below) and every option combination, in one cfn-lint
    run over their distinct templates: one test, so no template is linted twice when pytest-xdist
    would have sent two tests to different workers. The templates of PRE_COMMIT_COMBINATIONS are
    left to test_workflows' pre-commit test, which runs the cfn-lint hook on them: this run lints
    the others with the hook's own arguments, so every template is linted once, the same way."""
    variants = sorted(p for root in rendered.values() for p in root.glob("infra/*.yml"))
    assert len(variants) >= 3  # two bootstrap renders and at least the one API template
    combinations = sorted(
        path for combo in COMBINATIONS for path in bake_once(**combo).glob("infra/*.yml")
    )
    with_api = sum(combo["api_gateway"] == "yes" for combo in COMBINATIONS)
    assert len(combinations) == len(COMBINATIONS) + with_api
    hooked: set[bytes] = set()
    for combo in PRE_COMMIT_COMBINATIONS:
        root = bake_once(**combo)
        hook = pre_commit_hooks.hook(root, "cfn-lint")
        assert hook["entry"] == "cfn-lint" and hook["args"] == [f"--regions={REGION}"]
        infra = [f"infra/{p.name}" for p in root.glob("infra/*.yml")]
        hooked |= {(root / f).read_bytes() for f in pre_commit_hooks.selected(root, hook, infra)}
    assert len(hooked) >= 2  # at least the two bootstrap templates
    templates = [
        p for p in distinct_by_content(variants + combinations) if p.read_bytes() not in hooked
    ]

    matches = lint_by_config(ManualArgs(templates=[str(p) for p in templates], regions=[REGION]))

    assert [str(m) for m in matches] == []


def test_api_files_exist_only_with_api_gateway(rendered):
    with_api, without = rendered["one-account"], rendered["three-accounts"]
    for relative in ("infra/api.yml", "infra/api_handler/handler.py"):
        assert (with_api / relative).is_file(), relative
        assert not (without / relative).exists(), relative


def test_no_jinja_left_in_rendered_infra(rendered):
    for root in rendered.values():
        for path in (root / "infra").rglob("*"):
            if path.is_file() and path.suffix in {".yml", ".md", ".py"}:
                text = path.read_text()
                assert not re.search(r"\{\{|\{%|cookiecutter", text), path


def subject_repo(variant: str) -> str:
    """The immutable form GitHub gives new repositories: OWNER@OWNER_ID/REPO@REPO_ID."""
    answers = VARIANTS[variant]
    owner, repo = answers["github_owner"], answers.get("github_repo", answers["project"])
    return (
        f"{owner}@{answers.get('github_owner_id', '0')}/{repo}@{answers.get('github_repo_id', '0')}"
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_deploy_roles_trust_only_this_repository_per_environment(rendered, settings, variant):
    repo = subject_repo(variant)
    expected_sub = {
        "dev": f"repo:{repo}:ref:refs/heads/main",
        "staging": f"repo:{repo}:ref:refs/heads/main",
        # only the protected `prod` environment: its reviewers gate every prod change
        "prod": f"repo:{repo}:environment:prod",
    }
    accounts = accounts_of(settings[variant])
    project = settings[variant]["project"]

    for env, stack in stacks(bootstrap(rendered, variant), accounts).items():
        role = deploy_role(stack)
        assert role["RoleName"] == f"{project}-github-deploy-{env}"
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Effect"] == "Allow"
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Principal"]["Federated"] in (
            "<GitHubOIDCProvider>",
            f"arn:aws:iam::{accounts[env]}:oidc-provider/token.actions.githubusercontent.com",
        )
        # Exact matches only: no StringLike, so no wildcard can widen the subject.
        assert trust["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": expected_sub[env],
            }
        }


def test_oidc_provider_is_for_github_actions_and_optional(rendered, settings):
    template = bootstrap(rendered, "one-account")
    account = accounts_of(settings["one-account"])["dev"]
    with_provider = evaluate(
        template, {"Environment": "dev", "CreateOIDCProvider": "true"}, account
    )
    without = evaluate(template, {"Environment": "dev", "CreateOIDCProvider": "false"}, account)

    provider = resource_of_type(with_provider, "AWS::IAM::OIDCProvider")
    assert provider["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]
    assert not [r for r in without["Resources"].values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    assert deploy_role(without)["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Federated": f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_wildcard_actions_and_star_resources_only_where_unavoidable(rendered, settings, variant):
    documents = [
        *stacks(bootstrap(rendered, variant), accounts_of(settings[variant])).values(),
        *(
            [
                evaluate(api(rendered), {"Environment": env}, "111111111111")
                for env in ("staging", "prod")
            ]
            if variant == "one-account"
            else []
        ),
    ]
    star_actions: set[str] = set()
    checked = 0
    for stack in documents:
        for name, statement in statements(stack["Resources"]):
            actions = as_list(statement.get("Action", []))
            assert "*" not in actions, f"{name}: Action *"
            if statement["Effect"] != "Allow":
                continue
            checked += 1
            assert not [a for a in actions if a.endswith(":*")], f"{name}: {actions}"
            assert "NotAction" not in statement and "NotResource" not in statement
            if "Principal" in statement:
                assert statement["Principal"] != "*", f"{name}: public Allow"
            if "*" in as_list(statement.get("Resource", [])):
                assert as_list(statement["Resource"]) == ["*"], name
                star_actions.update(actions)
    assert checked > 40

    expected = STAR_ALWAYS | STAR_SERVING | STAR_SCALING
    expected |= STAR_MONITORING if settings[variant]["monitoring"] else set()
    assert star_actions == expected


def test_put_metric_data_is_limited_to_sagemaker_and_the_monitors_namespaces(rendered, settings):
    stack = stacks(bootstrap(rendered, "one-account"), accounts_of(settings["one-account"]))["dev"]
    sagemaker, monitor = [
        s
        for _, s in statements(stack["Resources"])
        if s.get("Action") == "cloudwatch:PutMetricData"
    ]
    namespaces = sagemaker["Condition"]["StringLike"]["cloudwatch:namespace"]
    assert namespaces and all("sagemaker" in ns for ns in namespaces)
    # ci_scripts.monitoring.namespace: the only other namespace the execution role may use
    project = settings["one-account"]["project"]
    assert monitor["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": f"{project}/Monitoring"}
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_pass_role_only_for_the_execution_role_to_sagemaker(rendered, settings, variant):
    accounts = accounts_of(settings[variant])
    role_name = settings[variant]["sagemaker_role"]
    found = 0
    for env, stack in stacks(bootstrap(rendered, variant), accounts).items():
        for name, statement in statements(stack["Resources"]):
            if "iam:PassRole" not in as_list(statement.get("Action", [])):
                continue
            found += 1
            assert as_list(statement["Action"]) == ["iam:PassRole"], name
            if statement.get("Sid") == "PassSchedulerRole":  # the monitor's schedule
                project = settings[variant]["project"]
                assert statement["Resource"] == (
                    f"arn:aws:iam::{accounts[env]}:role/{project}-{env}-monitor-scheduler"
                )
                assert statement["Condition"] == {
                    "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
                }
                continue
            assert statement["Resource"] == f"arn:aws:iam::{accounts[env]}:role/{role_name}"
            assert statement["Condition"] == {
                "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
            }
    assert found >= 3  # every deploy role and the execution role


@pytest.mark.parametrize("variant", VARIANTS)
def test_names_match_what_ci_scripts_reads(rendered, settings, variant):
    conf = settings[variant]
    dev = stacks(bootstrap(rendered, variant), accounts_of(conf))["dev"]

    assert dev["Resources"]["ArtifactBucket"]["Properties"]["BucketName"] == conf["artifact_bucket"]
    assert resource_of_type(dev, "AWS::ECR::Repository")["RepositoryName"] == conf["ecr_repository"]
    group = resource_of_type(dev, "AWS::SageMaker::ModelPackageGroup")
    assert group["ModelPackageGroupName"] == conf["model_package_group"]
    roles = {
        r["Properties"]["RoleName"]
        for r in dev["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    }
    assert conf["sagemaker_role"] in roles
    pipeline = policy(deploy_role(dev), "pipeline")[0]
    assert pipeline["Resource"].endswith(f":pipeline/{conf['pipeline_name']}")
    outputs = {k: v["Value"] for k, v in dev["Outputs"].items()}
    assert outputs["ArtifactBucketName"] == conf["artifact_bucket"]
    assert outputs["EcrRepositoryUri"] == (
        f"{conf['accounts']['dev']}.dkr.ecr.{REGION}.amazonaws.com/{conf['ecr_repository']}"
    )
    assert outputs["DeployRoleArn"] == "<DevDeployRole.Arn>"
    assert outputs["SageMakerExecutionRoleArn"] == (
        f"arn:aws:iam::{conf['accounts']['dev']}:role/{conf['sagemaker_role']}"
    )


@pytest.mark.parametrize(
    ("variant", "creators"),
    [("one-account", {"dev"}), ("three-accounts", {"dev", "staging", "prod"})],
)
def test_each_account_gets_exactly_one_execution_role(rendered, settings, variant, creators):
    role_name = settings[variant]["sagemaker_role"]
    made = {
        env
        for env, stack in stacks(
            bootstrap(rendered, variant), accounts_of(settings[variant])
        ).items()
        if any(r["Properties"].get("RoleName") == role_name for r in stack["Resources"].values())
    }
    assert made == creators


@pytest.mark.parametrize("variant", VARIANTS)
def test_registry_image_and_bucket_exist_only_in_dev(rendered, settings, variant):
    dev_only = {
        "AWS::ECR::Repository",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::Events::Rule",
        "AWS::SNS::Topic",
    }
    artifact_bucket = settings[variant]["artifact_bucket"]
    for env, stack in stacks(bootstrap(rendered, variant), accounts_of(settings[variant])).items():
        kinds = {r["Type"] for r in stack["Resources"].values()}
        assert (dev_only <= kinds) if env == "dev" else not (dev_only & kinds), env
        buckets = {bucket_names(stack)[name] for name in bucket_names(stack)}
        assert (artifact_bucket in buckets) == (env == "dev"), env


def test_artifact_bucket_is_encrypted_versioned_private_and_tls_only(rendered, settings):
    accounts = accounts_of(settings["three-accounts"])
    dev = stacks(bootstrap(rendered, "three-accounts"), accounts)["dev"]
    bucket = dev["Resources"]["ArtifactBucket"]["Properties"]

    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }

    document = dev["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in document if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {"<ArtifactBucket.Arn>", "<ArtifactBucket.Arn>/*"}

    serving = {f"arn:aws:iam::{accounts[env]}:root" for env in ("staging", "prod")}
    allows = [s for s in document if s["Effect"] == "Allow"]
    assert allows
    for statement in allows:
        assert set(as_list(statement["Principal"]["AWS"])) == serving
        assert not {"s3:DeleteObject", "s3:PutBucketPolicy"} & set(as_list(statement["Action"]))
    (read,) = [s for s in allows if s["Sid"] == "ServingAccountsReadArtifacts"]
    assert set(read["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == {
        "arn:aws:iam::222222222222:role/fraud-model-sagemaker-execution",
        "arn:aws:iam::333333333333:role/fraud-model-sagemaker-execution",
        "arn:aws:iam::222222222222:role/fraud-model-github-deploy-staging",
        "arn:aws:iam::333333333333:role/fraud-model-github-deploy-prod",
    }


def test_ecr_repository_is_immutable_scanned_and_pull_only_for_serving_accounts(rendered, settings):
    accounts = accounts_of(settings["three-accounts"])
    dev = stacks(bootstrap(rendered, "three-accounts"), accounts)["dev"]
    repo = resource_of_type(dev, "AWS::ECR::Repository")

    assert repo["ImageTagMutability"] == "IMMUTABLE"
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
    rules = json.loads(repo["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rules and all(r["selection"]["tagStatus"] == "untagged" for r in rules)
    (pull,) = repo["RepositoryPolicyText"]["Statement"]
    assert set(pull["Principal"]["AWS"]) == {
        "arn:aws:iam::222222222222:root",
        "arn:aws:iam::333333333333:root",
    }
    assert set(pull["Action"]) == {
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    }


def test_model_package_group_is_shared_with_staging_and_prod_only(rendered, settings):
    accounts = accounts_of(settings["three-accounts"])
    dev = stacks(bootstrap(rendered, "three-accounts"), accounts)["dev"]
    group = resource_of_type(dev, "AWS::SageMaker::ModelPackageGroup")
    document = group["ModelPackageGroupPolicy"]["Statement"]

    principals = {p for s in document for p in as_list(s["Principal"]["AWS"])}
    assert principals == {"arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"}
    granted = {a for s in document for a in as_list(s["Action"])}
    assert {"sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"} <= granted
    assert "sagemaker:DeleteModelPackage" not in granted
    # Only staging approves (the merge of the staging manifest PR is the approval).
    (approve,) = [s for s in document if "sagemaker:UpdateModelPackage" in as_list(s["Action"])]
    assert approve["Principal"]["AWS"] == "arn:aws:iam::222222222222:root"
    for statement in document:
        for resource in as_list(statement["Resource"]):
            assert resource.startswith("arn:aws:sagemaker:eu-west-1:111111111111:model-package")
            assert "/fraud-model" in resource


READ_ONLY = {
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeModel",
    "sagemaker:ListTags",
    # names only, no resource-level permissions: destroy and pruning find resources with them
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListModels",
    # prod's shadow test: the variants' metrics and the captured answers it pairs
    "cloudwatch:GetMetricData",
    "s3:ListBucket",
    "s3:GetObject",
}


def test_serving_roles_touch_only_their_own_environment(rendered, settings):
    stacks_ = stacks(bootstrap(rendered, "one-account"), accounts_of(settings["one-account"]))
    for env in ("staging", "prod"):
        role = deploy_role(stacks_[env])
        for statement in policy(role, "hosting"):
            actions = set(as_list(statement["Action"]))
            if actions <= READ_ONLY or actions <= {"iam:PassRole", "sts:AssumeRole"}:
                continue
            for resource in as_list(statement["Resource"]):
                assert re.search(
                    rf":(endpoint|endpoint-config|model|alarm)[/:]churn-model-{env}\b", resource
                ), (
                    env,
                    resource,
                )
        approve = [
            s
            for s in policy(role, "registry")
            if "sagemaker:UpdateModelPackage" in as_list(s["Action"])
        ]
        assert bool(approve) == (env == "staging")


@pytest.mark.parametrize("variant", VARIANTS)
def test_read_only_roles_only_read_and_staging_trusts_only_the_prod_deploy_role(
    rendered, settings, variant
):
    conf = settings[variant]
    accounts = accounts_of(conf)
    prefix = f"{conf['project']}-github"
    all_stacks = stacks(bootstrap(rendered, variant), accounts)
    for env in ("staging", "prod"):
        (role,) = [
            r["Properties"]
            for r in all_stacks[env]["Resources"].values()
            if r["Properties"].get("RoleName") == f"{prefix}-readonly-{env}"
        ]
        actions = {a for _, s in statements({"r": role["Policies"]}) for a in as_list(s["Action"])}
        assert actions and all(re.match(r"[a-z0-9-]+:(Describe|List|Get)", a) for a in actions), (
            actions
        )
        trusts = role["AssumeRolePolicyDocument"]["Statement"]
        github = trusts[0]["Condition"]["StringEquals"]
        assert github["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        assert all(
            sub.startswith(f"repo:{subject_repo(variant)}:")
            for sub in github["token.actions.githubusercontent.com:sub"]
        )
        chained = trusts[1:]
        if env == "prod":  # staging's promote job compares with what prod serves
            (from_staging,) = chained
            assert from_staging["Principal"] == {"AWS": f"arn:aws:iam::{accounts['staging']}:root"}
            assert from_staging["Condition"] == {
                "ArnEquals": {
                    "aws:PrincipalArn": (
                        f"arn:aws:iam::{accounts['staging']}:role/{prefix}-deploy-staging"
                    )
                }
            }
            continue
        (from_prod,) = chained
        assert from_prod["Principal"] == {"AWS": f"arn:aws:iam::{accounts['prod']}:root"}
        assert from_prod["Condition"] == {
            "ArnEquals": {
                "aws:PrincipalArn": f"arn:aws:iam::{accounts['prod']}:role/{prefix}-deploy-prod"
            }
        }
    # ...and the prod deploy role may assume nothing else.
    assumable = [
        s["Resource"]
        for _, s in statements(all_stacks["prod"]["Resources"])
        if s.get("Action") == "sts:AssumeRole" and "Resource" in s
    ]
    assert assumable == [f"arn:aws:iam::{accounts['staging']}:role/{prefix}-readonly-staging"]


def test_options_drop_the_permissions_they_do_not_need(rendered, settings):
    for variant, expect_autoscaling, expect_monitoring in (
        ("one-account", True, True),
        ("three-accounts", False, False),
    ):
        prod = stacks(bootstrap(rendered, variant), accounts_of(settings[variant]))["prod"]
        names = {p["PolicyName"] for p in deploy_role(prod)["Policies"]}
        scaling = {
            a for s in policy(deploy_role(prod), "autoscaling") for a in as_list(s["Action"])
        }
        assert ("application-autoscaling:RegisterScalableTarget" in scaling) == expect_autoscaling
        assert ("monitoring" in names) == expect_monitoring


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_taggable_resource_is_tagged(rendered, settings, variant):
    for env, stack in stacks(bootstrap(rendered, variant), accounts_of(settings[variant])).items():
        tagged = 0
        for name, resource in stack["Resources"].items():
            tags = resource["Properties"].get("Tags")
            if tags is None:
                assert resource["Type"] in {"AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"}, name
                continue
            tagged += 1
            assert {t["Key"]: t["Value"] for t in tags} == {
                "project": settings[variant]["project"],
                "environment": env,
            }, name
        assert tagged >= 1


def test_api_resources_are_tagged(rendered):
    stack = evaluate(api(rendered), {"Environment": "prod"}, "111111111111")
    expected = {"project": "churn-model", "environment": "prod"}
    for name, resource in stack["Resources"].items():
        tags = resource["Properties"].get("Tags")
        if resource["Type"] in {"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage"}:
            assert tags == expected, name  # API Gateway v2 takes a tag map
        elif tags is not None:
            assert {t["Key"]: t["Value"] for t in tags} == expected, name
        else:
            assert resource["Type"] in {
                "AWS::ApiGatewayV2::Integration",
                "AWS::ApiGatewayV2::Route",
                "AWS::Lambda::Permission",
            }, name


def test_api_invokes_only_its_endpoint_behind_iam_auth_and_throttling(rendered):
    for env in ("staging", "prod"):
        stack = evaluate(api(rendered), {"Environment": env}, "111111111111")
        role = resource_of_type(stack, "AWS::IAM::Role")
        invoke = [s for _, s in statements({"r": role}) if s.get("Sid")]
        (endpoint,) = [s for s in invoke if s["Action"] == "sagemaker:InvokeEndpoint"]
        assert endpoint["Resource"] == (
            f"arn:aws:sagemaker:{REGION}:111111111111:endpoint/churn-model-{env}"
        )
        function = resource_of_type(stack, "AWS::Lambda::Function")
        assert function["Runtime"] == "python3.12"
        assert function["Environment"]["Variables"]["ENDPOINT_NAME"] == f"churn-model-{env}"
        assert function["Timeout"] < 30
        assert resource_of_type(stack, "AWS::ApiGatewayV2::Route")["AuthorizationType"] == "AWS_IAM"
        stage = resource_of_type(stack, "AWS::ApiGatewayV2::Stage")
        assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(stage["DefaultRouteSettings"])
        retention = [
            r["Properties"]["RetentionInDays"]
            for r in stack["Resources"].values()
            if r["Type"] == "AWS::Logs::LogGroup"
        ]
        assert len(retention) == 2 and all(retention)


def test_api_lambda_code_directory_is_what_package_uploads(rendered):
    infra = rendered["one-account"] / "infra"
    code = api(rendered)["Resources"]["HandlerFunction"]["Properties"]["Code"]
    module, function = api(rendered)["Resources"]["HandlerFunction"]["Properties"]["Handler"].split(
        "."
    )
    source = (infra / code / f"{module}.py").read_text()
    assert f"def {function}(event" in source


# ----------------------------------------------------------------- capture replication


def stacks_for(template: dict, accounts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The three stacks with the account parameters set to ``accounts`` (not the render's)."""
    params = {f"{env.capitalize()}AccountId": accounts[env] for env in ENVIRONMENTS}
    return {
        env: evaluate(template, {"Environment": env, **params}, accounts[env])
        for env in ENVIRONMENTS
    }


def replication_statement(dev: dict[str, Any]) -> dict[str, Any] | None:
    document = dev["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    found = [s for s in document if s.get("Sid") == "ServingAccountsReplicateCaptureAndLabels"]
    return found[0] if found else None


def test_serving_accounts_capture_locally_and_replicate_into_dev(rendered, settings):
    from ci_scripts.project import ProjectConfig

    conf = settings["three-accounts"]
    accounts = accounts_of(conf)
    all_stacks = stacks(bootstrap(rendered, "three-accounts"), accounts)
    config = ProjectConfig.load(rendered["three-accounts"])
    artifacts = f"arn:aws:s3:::{conf['artifact_bucket']}"
    for env in ("staging", "prod"):
        stack = all_stacks[env]
        bucket = stack["Resources"]["CaptureBucket"]["Properties"]
        assert bucket["BucketName"] == config.capture_bucket(env) != conf["artifact_bucket"]
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
        capture_policy = stack["Resources"]["CaptureBucketPolicy"]["Properties"]
        (deny,) = capture_policy["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }
        replication = bucket["ReplicationConfiguration"]
        assert replication["Role"] == "<CaptureReplicationRole.Arn>"
        assert {r["Filter"]["Prefix"] for r in replication["Rules"]} == {
            "datacapture/",
            "groundtruth/",
        }
        for rule in replication["Rules"]:
            assert rule["Status"] == "Enabled"
            assert rule["Destination"]["Bucket"] == artifacts
            assert rule["Destination"]["Account"] == accounts["dev"]
        role = stack["Resources"]["CaptureReplicationRole"]["Properties"]
        assert role["RoleName"] == "fraud-model-capture-replication"
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "s3.amazonaws.com"}
        (replicate,) = [
            s for s in policy(role, "replicate-to-dev") if s["Sid"] == "ReplicateIntoDev"
        ]
        assert set(replicate["Resource"]) == {
            f"{artifacts}/datacapture/*",
            f"{artifacts}/groundtruth/*",
        }

    # versioning on the destination too, and only the two replication roles admitted
    dev = all_stacks["dev"]
    assert dev["Resources"]["ArtifactBucket"]["Properties"]["VersioningConfiguration"] == {
        "Status": "Enabled"
    }
    statement = replication_statement(dev)
    assert statement is not None
    assert set(as_list(statement["Principal"]["AWS"])) == {
        "arn:aws:iam::222222222222:root",
        "arn:aws:iam::333333333333:root",
    }
    assert set(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == {
        "arn:aws:iam::222222222222:role/fraud-model-capture-replication",
        "arn:aws:iam::333333333333:role/fraud-model-capture-replication",
    }
    assert set(statement["Resource"]) == {
        "<ArtifactBucket.Arn>/datacapture/*",
        "<ArtifactBucket.Arn>/groundtruth/*",
    }


@pytest.mark.parametrize(
    ("accounts", "creators", "sources"),
    [
        # single account: everything writes to the artifact bucket; nothing replicates to itself
        ({"dev": "111111111111", "staging": "111111111111", "prod": "111111111111"}, set(), set()),
        # staging and prod share an account: one capture bucket (made by staging)
        (
            {"dev": "111111111111", "staging": "222222222222", "prod": "222222222222"},
            {"staging"},
            {"222222222222"},
        ),
        # staging in dev's account, prod alone
        (
            {"dev": "111111111111", "staging": "111111111111", "prod": "333333333333"},
            {"prod"},
            {"333333333333"},
        ),
    ],
)
def test_capture_buckets_and_replication_follow_the_accounts(rendered, accounts, creators, sources):
    all_stacks = stacks_for(bootstrap(rendered, "three-accounts"), accounts)
    made = {env for env, stack in all_stacks.items() if "CaptureBucket" in stack["Resources"]}
    assert made == creators
    roles = {env for env, s in all_stacks.items() if "CaptureReplicationRole" in s["Resources"]}
    assert roles == creators
    statement = replication_statement(all_stacks["dev"])
    if not sources:
        assert statement is None
        return
    assert statement is not None
    assert set(as_list(statement["Principal"]["AWS"])) == {
        f"arn:aws:iam::{a}:root" for a in sources
    }
    assert set(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == {
        f"arn:aws:iam::{a}:role/fraud-model-capture-replication" for a in sources
    }


# ----------------------------------------------------------------- retention (lifecycle rules)


def expirations(bucket: dict[str, Any]) -> dict[str, str]:
    """Prefix -> ExpirationInDays of the bucket's enabled prefix rules."""
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert all(rule["Status"] == "Enabled" for rule in rules)
    return {r["Prefix"]: str(r["ExpirationInDays"]) for r in rules if "Prefix" in r}


def covered(uri: str, prefixes: dict[str, str]) -> str | None:
    key = uri.split("/", 3)[3] + "/"
    days = [d for prefix, d in prefixes.items() if key.startswith(prefix)]
    return days[0] if days else None


def test_buckets_expire_captures_reports_and_runs_as_the_parameters_say(rendered, settings):
    from types import SimpleNamespace

    from ci_scripts import model_quality, monitoring

    project = SimpleNamespace(artifact_bucket="b")

    conf = settings["three-accounts"]
    template = bootstrap(rendered, "three-accounts")
    retention = {
        "CaptureRetentionDays": "30",
        "MonitoringReportRetentionDays": "60",
        "PipelineRunRetentionDays": "400",
    }
    buckets = [
        evaluate(template, {"Environment": "dev", **retention}, "111111111111")["Resources"][
            "ArtifactBucket"
        ]["Properties"],
        evaluate(template, {"Environment": "prod", **retention}, "333333333333")["Resources"][
            "CaptureBucket"
        ]["Properties"],
    ]  # fmt: skip
    for index, bucket in enumerate(buckets):
        prefixes = expirations(bucket)
        for env in ("staging", "prod"):
            # The very prefixes ci_scripts and the endpoints write to.
            assert covered(f"s3://b/datacapture/{env}/AllTraffic/2026/x.jsonl", prefixes) == "30"
            assert covered(model_quality.ground_truth_prefix("b", env) + "/x", prefixes) == "30"
            assert (
                covered(monitoring.runs_prefix(project, env) + "/e1/summary.json", prefixes) == "60"
            )
            # the monitor's history of live metrics (its report's charts) is not a report
            history = monitoring.state_prefix(project, env) + "/history.json"
            assert covered(history, prefixes) is None
            # Baselines of served versions must stay as long as the versions do.
            assert (
                covered(f"s3://b/monitoring/{env}/baselines/v3/constraints.json", prefixes) is None
            )
        runs = covered(f"s3://b/{conf['project']}/pipeline-runs/exec/Train/model.tar.gz", prefixes)
        assert runs == ("400" if index == 0 else None)  # runs live in the artifact bucket only
        (versions,) = [r for r in bucket["LifecycleConfiguration"]["Rules"] if "Prefix" not in r]
        assert versions["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
        assert versions["ExpiredObjectDeleteMarker"] is True

    # The default keeps pipeline runs: they hold every registered version's model.tar.gz.
    dev = stacks(template, accounts_of(conf))["dev"]
    defaults = expirations(dev["Resources"]["ArtifactBucket"]["Properties"])
    assert covered(f"s3://b/{conf['project']}/pipeline-runs/e/Train/model.tar.gz", defaults) is None
    assert covered("s3://b/datacapture/prod/x", defaults) == "90"
    assert covered(monitoring.runs_prefix(project, "prod") + "/e/summary.json", defaults) == "180"


# ----------------------------------------------------------------- customer-managed KMS key

KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def kms_stacks(template: dict, accounts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """dev creates the project key (CreateKmsKey=true); staging and prod pass its ARN."""
    result = {}
    for env in ENVIRONMENTS:
        params = {"Environment": env, "CreateOIDCProvider": "true"}
        params.update({"CreateKmsKey": "true"} if env == "dev" else {"KmsKeyArn": KEY_ARN})
        result[env] = evaluate(template, params, accounts[env])
    return result


def kms_statements(resources: dict[str, Any]):
    for name, statement in statements(resources):
        if any(a.startswith("kms:") for a in as_list(statement.get("Action", []))):
            yield name, statement


def role_kms_actions(role: dict[str, Any]) -> set[str]:
    return {
        a
        for p in role["Policies"]
        if p["PolicyName"] == "kms"
        for s in p["PolicyDocument"]["Statement"]
        for a in as_list(s["Action"])
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_without_a_key_nothing_is_kms_and_no_role_gets_kms_grants(rendered, settings, variant):
    for env, stack in stacks(bootstrap(rendered, variant), accounts_of(settings[variant])).items():
        resources = stack["Resources"]
        assert "ProjectKey" not in resources
        assert list(kms_statements(resources)) == [], env
        assert "KmsKeyArn" not in stack["Outputs"]
        for name, resource in resources.items():
            if resource["Type"] == "AWS::S3::Bucket":
                (rule,) = resource["Properties"]["BucketEncryption"][
                    "ServerSideEncryptionConfiguration"
                ]
                assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}, name
                for replication in (
                    resource["Properties"].get("ReplicationConfiguration", {}).get("Rules", [])
                ):
                    assert "SourceSelectionCriteria" not in replication
                    assert "EncryptionConfiguration" not in replication["Destination"]
        if env == "dev":
            ecr = resources["EcrRepository"]["Properties"]["EncryptionConfiguration"]
            assert ecr == {"EncryptionType": "AES256"}
            assert "KmsMasterKeyId" not in resources["RegistryEventsTopic"]["Properties"]


def test_dev_creates_the_key_and_encrypts_bucket_image_and_topic_with_it(rendered, settings):
    accounts = accounts_of(settings["three-accounts"])
    dev = kms_stacks(bootstrap(rendered, "three-accounts"), accounts)["dev"]
    resources = dev["Resources"]
    key = resources["ProjectKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert resources["ProjectKey"]["DeletionPolicy"] == "Retain"

    (rule,) = resources["ArtifactBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert rule == {
        "ServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": "<ProjectKey.Arn>",
        },
        "BucketKeyEnabled": True,
    }
    assert resources["EcrRepository"]["Properties"]["EncryptionConfiguration"] == {
        "EncryptionType": "KMS",
        "KmsKey": "<ProjectKey.Arn>",
    }
    assert resources["RegistryEventsTopic"]["Properties"]["KmsMasterKeyId"] == "<ProjectKey.Arn>"
    assert dev["Outputs"]["KmsKeyArn"]["Value"] == "<ProjectKey.Arn>"
    # the dev roles' kms: statements name the key, nothing wider
    for name, statement in kms_statements(
        {k: v for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}
    ):
        assert statement["Resource"] == "<ProjectKey.Arn>", name


def test_key_policy_admits_exactly_the_roles_that_use_the_key(rendered, settings):
    accounts = accounts_of(settings["three-accounts"])
    dev = kms_stacks(bootstrap(rendered, "three-accounts"), accounts)["dev"]
    policy_statements = dev["Resources"]["ProjectKey"]["Properties"]["KeyPolicy"]["Statement"]
    by_sid = {s["Sid"]: s for s in policy_statements}
    for statement in policy_statements:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] != "*"
        assert not [a for a in as_list(statement["Action"]) if "*" in a], statement["Sid"]

    def role(env: str, name: str) -> str:
        return f"arn:aws:iam::{accounts[env]}:role/{name}"

    execution = {role(env, "fraud-model-sagemaker-execution") for env in ENVIRONMENTS}
    deploy = {role(env, f"fraud-model-github-deploy-{env}") for env in ENVIRONMENTS}
    readonly = {role(env, f"fraud-model-github-readonly-{env}") for env in ("staging", "prod")}
    replication = {role(env, "fraud-model-capture-replication") for env in ("staging", "prod")}
    roots = {f"arn:aws:iam::{a}:root" for a in accounts.values()}

    def admitted(sid: str) -> set[str]:
        statement = by_sid[sid]
        assert set(as_list(statement["Principal"]["AWS"])) == roots, sid
        return set(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])

    assert admitted("ProjectRolesDecrypt") == execution | deploy | readonly | replication
    assert admitted("ProjectRolesEncrypt") == execution | deploy | replication
    grants = by_sid["ProjectRolesGrantToSageMaker"]
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    serving_deploy = deploy - {role("dev", "fraud-model-github-deploy-dev")}
    assert admitted("ProjectRolesGrantToSageMaker") == execution | serving_deploy
    admin = by_sid["DevAccountAdministersKey"]
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{accounts['dev']}:root"}
    # a grant is a use of the key: none through the administrators' statement, only grants
    # for AWS resources (ECR's repository, SageMaker's volumes) to those who need them
    assert not {"kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(
        admin["Action"]
    )
    ecr = by_sid["DevAccountGrantsToEcr"]
    assert ecr["Principal"] == admin["Principal"] and ecr["Action"] == "kms:CreateGrant"
    assert ecr["Condition"] == {
        "StringEquals": {"kms:ViaService": f"ecr.{REGION}.amazonaws.com"},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    events = by_sid["EventBridgePublishesRegistryEvents"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"]["ArnEquals"]["aws:SourceArn"] == (
        f"arn:aws:events:{REGION}:{accounts['dev']}:rule/fraud-model-model-package-state-change"
    )
    # three-accounts renders without the API: no log-group grant for log groups that do not exist
    assert "CloudWatchLogsEncryptApiLogs" not in by_sid


def test_single_account_key_policy_names_each_account_once(rendered, settings):
    accounts = accounts_of(settings["one-account"])
    dev = kms_stacks(bootstrap(rendered, "one-account"), accounts)["dev"]
    statements_ = dev["Resources"]["ProjectKey"]["Properties"]["KeyPolicy"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements_}
    assert by_sid["ProjectRolesDecrypt"]["Principal"] == {
        "AWS": [f"arn:aws:iam::{accounts['dev']}:root"]
    }
    logs = by_sid["CloudWatchLogsEncryptApiLogs"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert set(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]) == {
        f"arn:aws:logs:{REGION}:{accounts[env]}:log-group:/aws/*/churn-model-{env}-api"
        for env in ("staging", "prod")
    }


def test_serving_stacks_use_the_dev_key_for_captures_replication_and_volumes(rendered, settings):
    accounts = accounts_of(settings["three-accounts"])
    all_stacks = kms_stacks(bootstrap(rendered, "three-accounts"), accounts)
    for env in ("staging", "prod"):
        resources = all_stacks[env]["Resources"]
        assert "ProjectKey" not in resources
        bucket = resources["CaptureBucket"]["Properties"]
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": KEY_ARN,
        }
        for replication in bucket["ReplicationConfiguration"]["Rules"]:
            assert replication["SourceSelectionCriteria"] == {
                "SseKmsEncryptedObjects": {"Status": "Enabled"}
            }
            assert replication["Destination"]["EncryptionConfiguration"] == {
                "ReplicaKmsKeyID": KEY_ARN
            }
        deploy = deploy_role(all_stacks[env])
        assert role_kms_actions(deploy) == {
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:GenerateDataKey",
        }
        (grant,) = [s for s in policy(deploy, "kms") if s["Action"] == "kms:CreateGrant"]
        assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        execution = resources["SageMakerExecutionRole"]["Properties"]
        assert role_kms_actions(execution) == {
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey",
        }
        replication_role = resources["CaptureReplicationRole"]["Properties"]
        (through_s3,) = policy(replication_role, "kms")
        assert through_s3["Condition"] == {
            "StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
        }
        # three-accounts has no monitoring: the read-only role reads no reports, so no kms
        assert role_kms_actions(resources["ReadOnlyRole"]["Properties"]) == set()
        for name, statement in kms_statements(resources):
            assert statement["Resource"] == KEY_ARN, name


def test_read_only_role_may_only_decrypt_monitoring_reports(rendered, settings):
    accounts = accounts_of(settings["one-account"])
    prod = kms_stacks(bootstrap(rendered, "one-account"), accounts)["prod"]
    readonly = prod["Resources"]["ReadOnlyRole"]["Properties"]
    assert role_kms_actions(readonly) == {"kms:Decrypt"}


def test_kms_key_is_created_only_by_the_dev_stack(rendered):
    """The Rules section refuses CreateKmsKey outside dev, or next to a brought key."""
    rules = bootstrap(rendered, "three-accounts")["Rules"]["KmsKeyIsCreatedOnlyByDev"]
    assert rules["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateKmsKey"}, "true"]}
    (assertion,) = rules["Assertions"]
    assert assertion["Assert"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "Environment"}, "dev"]},
            {"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]},
        ]
    }


def test_api_log_groups_use_the_key_when_given_and_the_lambda_is_bounded(rendered):
    template = api(rendered)
    without = evaluate(template, {"Environment": "prod"}, "111111111111")
    with_key = evaluate(template, {"Environment": "prod", "KmsKeyArn": KEY_ARN}, "111111111111")
    groups = [n for n, r in without["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 2
    for name in groups:
        assert "KmsKeyId" not in without["Resources"][name]["Properties"]
        assert with_key["Resources"][name]["Properties"]["KmsKeyId"] == KEY_ARN
    function = resource_of_type(without, "AWS::Lambda::Function")
    assert function["ReservedConcurrentExecutions"] == "20"
    bounded = evaluate(template, {"Environment": "prod", "ReservedConcurrency": "5"}, "1" * 12)
    assert resource_of_type(bounded, "AWS::Lambda::Function")["ReservedConcurrentExecutions"] == "5"
