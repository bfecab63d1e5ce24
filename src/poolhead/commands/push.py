"""``poolhead push EXPORT ORG/NAME [--private]``: upload an export to the Hugging Face hub as it is."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the folder poolhead export wrote")
    parser.add_argument("repo_id", help="the hub repository, ORG/NAME (created if it does not exist)")
    add_hub_options(parser)


def add_hub_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--commit-message", help="message of the upload's commit")


def push(folder, repo_id: str, args: argparse.Namespace, command: str) -> int:
    from poolhead.export.hub import push_to_hub

    try:
        url = push_to_hub(folder, repo_id, private=args.private, commit_message=args.commit_message)
    except (OSError, ValueError) as error:  # huggingface_hub's HTTP and auth errors are OSErrors
        print(f"poolhead {command}: error: {error}", file=sys.stderr)
        return 2
    print(f"uploaded {folder} to {repo_id}: {url}")
    return 0


def run(args: argparse.Namespace) -> int:
    return push(args.folder, args.repo_id, args, "push")
