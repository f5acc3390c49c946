"""The base of every request: made from the parsed command line."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TypeVar

R = TypeVar("R", bound="Request")


@dataclass(frozen=True, kw_only=True)
class Request:
    """The base of every request: made from the parsed command line (each command's fields are its own)."""

    @classmethod
    def from_namespace(cls: type[R], args: argparse.Namespace) -> R:
        """The request of parsed arguments; argparse's own keys (the command's name) are left out."""
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        # a repeatable option (``--tag``) arrives as argparse's list: a frozen request holds a tuple
        return cls(**{k: tuple(v) if isinstance(v, list) and fields[k].startswith("tuple") else v
                      for k, v in vars(args).items() if k in fields})
