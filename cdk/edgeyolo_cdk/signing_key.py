"""BundleSigningKey: the AWS KMS key that signs model bundles (``training_scripts pack --sign kms:...``).

An asymmetric ``ECC_NIST_P256`` / ``SIGN_VERIFY`` key: the private half never leaves KMS. Its key
policy lets the account administer it and read its public key, and denies ``kms:Sign`` to every
principal except the training host's role (matched by ARN, so the policy does not depend on the
Training stack existing yet); the role's own IAM policy (training_host.py) then allows it. Devices
trust the public key (``python -m training_scripts signing-key --kms <alias> --out keys/``).

Retained with the artifacts (bundles signed with it stay verifiable) unless the stage is a
throwaway one. Asymmetric KMS keys cannot rotate automatically: rotate by making a new key, adding
its public key to the devices, then retiring the old one (edge_image/README.md, "Bundle provenance").
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

#: What the account's administrators may do with the key: everything but signing.
ADMIN_ACTIONS = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)


@dataclass(frozen=True, kw_only=True)
class BundleSigningKeyProps:
    """``alias`` (``alias/...``); ``signer_role_name``: the only role that may sign; ``throwaway``."""

    alias: str
    signer_role_name: str
    throwaway: bool


class BundleSigningKey(Construct):
    """Creates ``key``; the Training stack grants its host role ``kms:Sign`` + ``kms:GetPublicKey``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: BundleSigningKeyProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        account = iam.AccountRootPrincipal()
        signer_arn = f"arn:{stack.partition}:iam::{stack.account}:role/{props.signer_role_name}"
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="AdministerButNotSign",
                    principals=[account],
                    actions=list(ADMIN_ACTIONS),
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="SignThroughIam", principals=[account], actions=["kms:Sign"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="OnlyTheTrainingHostSigns",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["kms:Sign"],
                    resources=["*"],
                    conditions={"StringNotEquals": {"aws:PrincipalArn": signer_arn}},
                ),
            ]
        )
        self.key = kms.Key(
            self,
            "Key",
            description="Signs model bundle manifests (ECDSA P-256); devices trust its public key",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            alias=props.alias,
            policy=policy,
            pending_window=Duration.days(7),
            removal_policy=RemovalPolicy.DESTROY if props.throwaway else RemovalPolicy.RETAIN,
        )
