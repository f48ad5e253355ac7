"""Specification of ``partitions``: which AWS partition (and DNS suffix) a region is in.

Proves the four partitions Cognito runs in are placed (``aws``, ``aws-us-gov`` under
``amazonaws.com``, ``aws-cn`` under ``amazonaws.com.cn``, the European Sovereign Cloud
under ``amazonaws.eu``) and that the isolated partitions, and shapes no partition
knows, are not guessed.
"""

from __future__ import annotations

import pytest

from fastapi_cognito_guard.partitions import partition_of


@pytest.mark.parametrize(
    ("region", "name", "suffix"),
    [
        ("eu-central-1", "aws", "amazonaws.com"),
        ("ap-southeast-5", "aws", "amazonaws.com"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("cn-northwest-1", "aws-cn", "amazonaws.com.cn"),
        ("eusc-de-east-1", "aws-eusc", "amazonaws.eu"),
    ],
)
def test_known_regions_are_placed_in_their_partition(region: str, name: str, suffix: str) -> None:
    partition = partition_of(region)

    assert partition is not None
    assert (partition.name, partition.dns_suffix) == (name, suffix)


@pytest.mark.parametrize(
    "region", ["us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "zz-mars-1"]
)
def test_isolated_or_unknown_regions_have_no_partition(region: str) -> None:
    assert partition_of(region) is None
