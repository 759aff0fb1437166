"""`dlx` commands for the sagemaker run target (being written)."""
import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this target's sub-commands to the `dlx` parser."""
