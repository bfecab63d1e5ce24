"""``poolhead push EXPORT ORG/NAME [--private]``: upload an export to the Hugging Face hub as it is."""

from __future__ import annotations

import argparse
import sys

from poolhead.errors import UserError


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
    except UserError:
        raise  # cli.main reports it, once (with its traceback under POOLHEAD_DEBUG=1)
    except (OSError, ValueError) as error:  # huggingface_hub's HTTP and auth errors are OSErrors
        print(f"poolhead {command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not is_network_error(error):
            raise
        print(
            f"poolhead {command}: error: could not reach the Hugging Face hub ({type(error).__name__}: {error}); "
            f"check the network connection (and HF_ENDPOINT if set), then push again",
            file=sys.stderr,
        )
        return 2
    print(f"uploaded {folder} to {repo_id}: {url}")
    return 0


#: httpx's (or its fork httpx2's, which huggingface_hub may use) errors of a connection that failed or timed out
NETWORK_ERRORS = {"TransportError", "NetworkError", "TimeoutException"}


def is_network_error(error: BaseException) -> bool:
    """huggingface_hub's HTTP client failing to connect, read or time out: a missing network, not a bug."""
    return any(
        kind.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore") and kind.__name__ in NETWORK_ERRORS
        for kind in type(error).__mro__
    )


def run(args: argparse.Namespace) -> int:
    return push(args.folder, args.repo_id, args, "push")
