"""AWS partitions: which DNS suffix a region's Cognito endpoints live under.

A pool id carries its region (``eu-central-1_AbC123xyz``), and the region belongs to
one partition, whose suffix every default host uses: issuers, JWKS, the user-pool
API, identity pools and STS. ``aws`` and ``aws-us-gov`` answer under
``amazonaws.com``, ``aws-cn`` under ``amazonaws.com.cn`` and the European Sovereign
Cloud (``aws-eusc``) under ``amazonaws.eu``. A region of a partition not listed here
(the isolated ``aws-iso*`` ones, or a new one) has no default host: guessing one would
send every key fetch to a name that is not Cognito's, so settings refuse it and ask
for the endpoints explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REGION_SHAPE", "Partition", "partition_of"]

REGION_SHAPE = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-\d+")
"""What a region name looks like, in any partition (``eusc-de-east-1``, ``us-gov-west-1``)."""


@dataclass(frozen=True)
class Partition:
    """One AWS partition: its name and the DNS suffix of its service endpoints."""

    name: str
    dns_suffix: str


_PARTITIONS: tuple[tuple[re.Pattern[str], Partition | None], ...] = (
    # Isolated partitions first: their regions would otherwise match the ``aws`` shape.
    (re.compile(r"(?:us-iso[a-z]*|eu-isoe)-[a-z]+-\d+"), None),
    (re.compile(r"us-gov-[a-z]+-\d+"), Partition("aws-us-gov", "amazonaws.com")),
    (re.compile(r"cn-[a-z]+-\d+"), Partition("aws-cn", "amazonaws.com.cn")),
    (re.compile(r"eusc-[a-z]+-[a-z]+-\d+"), Partition("aws-eusc", "amazonaws.eu")),
    (
        re.compile(r"(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+"),
        Partition("aws", "amazonaws.com"),
    ),
)


def partition_of(region: str) -> Partition | None:
    """The partition ``region`` belongs to, or None when the library cannot place it."""
    for shape, partition in _PARTITIONS:
        if shape.fullmatch(region):
            return partition
    return None
