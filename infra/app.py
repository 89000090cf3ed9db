"""labmesh's CDK app: `python app.py` (or `cdk synth`) writes the CloudFormation template to cdk.out.

The repository root goes on ``sys.path`` so the stack imports the DataZone form
types from `labmesh_dagster.connectors.catalog.datazone_forms`, the module
`labmesh datazone bootstrap` uses (that module and what it imports need only
the standard library). cdk-nag's AWS Solutions pack checks the stack as it is
synthesised; `labmesh_infra.suppressions` holds every finding left, each with its reason,
and an unsuppressed error fails the synthesis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from labmesh_infra.stack import LabmeshStack  # noqa: E402
from labmesh_infra.suppressions import suppress  # noqa: E402

FEATURE_FLAGS = {
    # Server access logs are allowed in by the log bucket's policy, not by the legacy LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}
"""CDK feature flags the stack is written for (`cdk.json` holds them too, for the `cdk` command)."""


def build(app: cdk.App) -> LabmeshStack:
    # The region is fixed at synthesis: the load balancer's access logs are written by that region's ELB account.
    region = app.node.try_get_context("labmesh:region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
    stack = LabmeshStack(
        app,
        "Labmesh",
        description="labmesh: a laboratory data mesh on Dagster",
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=region),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    suppress(stack)
    return stack


def main() -> int:
    app = cdk.App(context=FEATURE_FLAGS)
    build(app)
    try:
        assembly = app.synth()
    except RuntimeError as error:
        # cdk-nag found what labmesh_infra/suppressions.py does not acknowledge; CDK printed each finding above.
        print(f"synthesis failed: {error}", file=sys.stderr)
        return 1
    errors = [
        message
        for stack in assembly.stacks
        for message in stack.messages
        if message.level == cdk.cx_api.SynthesisMessageLevel.ERROR
    ]
    for message in errors:
        print(f"{message.id}: {message.entry.data}", file=sys.stderr)
    print(
        f"synthesised {', '.join(s.stack_name for s in assembly.stacks)} to {assembly.directory}: {len(errors)} errors"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
