"""The options of the commands that prepare a workspace and a config: ``demo-data``, ``demo-workspace``,
``config``, ``model-summary``."""

from __future__ import annotations

import argparse

from engine.arguments.values import whole
from engine.config.templates import TEMPLATES
from engine.layout import CHECKPOINT_SUFFIX, CONFIG, WEIGHTS, checkpoint_label


def add_demo_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-data", help="synthesize a small corpus in the real datasets' layouts",
                       description="Write VoxCeleb-, MUSAN- and AMI-style synthetic data and its database.yml.")
    _add_corpus_options(p)


def add_demo_workspace(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-workspace", help="prepare the demo workspace that `make demo` opens",
                       description=f"Corpus, CPU-sized {CONFIG} and runs.db in DIR.")
    _add_corpus_options(p)


def _add_corpus_options(p: argparse.ArgumentParser) -> None:
    """The synthetic corpus's folder, size and seed (``demo-data`` and ``demo-workspace``)."""
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--speakers", type=whole(6, 10_000, "a number of speakers"), default=60, metavar="N",
                   help="number of speakers, two thirds for training (default: 60)")
    p.add_argument("--seed", type=whole(0, 2**32 - 1, "a random seed"), default=0, help="random seed (default: 0)")


def add_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help=f"{CONFIG} tools")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = config_sub.add_parser("check", help=f"validate a {CONFIG} and print it resolved",
                              description="Print the resolved config (defaults filled in), then, as YAML "
                                          "comments, each value the file leaves to its default; or name "
                                          "the offending key and line and exit 2.")
    c.add_argument("file", metavar="FILE")
    c = config_sub.add_parser("template", help="print a shipped config (the tutorial's, the demo's, a backbone's)",
                              description=f"Print the shipped config NAME; save it as EXP_DIR/{CONFIG} "
                                          f"(`mkdir -p EXP_DIR && spkemb-engine config template resnet34 > "
                                          f"EXP_DIR/{CONFIG}`) and edit it. The backbones' are CPU-sized, with the "
                                          "VoxCeleb2 recipe's values in comments.")
    c.add_argument("name", metavar="NAME", choices=TEMPLATES,
                   help=f"one of {', '.join(TEMPLATES)}")
    c = config_sub.add_parser(
        "large-margin", help="the config of a large-margin fine-tuning fork (WeSpeaker's lm stage)",
        description="Print the config of WeSpeaker's large-margin fine-tuning stage as a fork of PARENT: its "
                    "config with the keys of engine/templates/large_margin.yml in place of its own (3 s chunks, "
                    "margin 0.5 without warm-up, ExponentialDecrease 1e-4 -> 2.5e-5, no speed perturbation), "
                    f"the network unchanged. Save it as NEW_EXP_DIR/{CONFIG} and train it with "
                    "`train --init-from CHECKPOINT [--init-classifier] --to 5 NEW_EXP_DIR PROTOCOL`.")
    c.add_argument("parent", metavar="PARENT",
                   help=f"the checkpoint to fork (TRN_DIR/{WEIGHTS}/{checkpoint_label(40)}{CHECKPOINT_SUFFIX}, "
                        f"avg-last10{CHECKPOINT_SUFFIX}; its own config), or a {CONFIG} or an experiment directory "
                        "holding one")


def add_model_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-summary", help="layer table and parameter count of a config's network",
                       description="Print each layer's output shape for one `duration`-long chunk "
                                   "and its parameters, then `parameters: N`.")
    p.add_argument("config", metavar="CONFIG", help=f"{CONFIG}, or an experiment directory")
