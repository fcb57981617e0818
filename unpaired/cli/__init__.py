"""The ``unpaired`` command (``unpaired.cli:main``): parse arguments, validate, call one function.

``parser.py`` declares the subcommands; ``commands.py`` (train, translate, data, import) and ``reports.py``
(evaluate, compare, extractor, export, demo) hold one ``cmd_<name>(args)`` each. Heavy imports stay inside
the commands.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from .commands import CLIError
from .parser import build_parser

__all__ = ["CLIError", "build_parser", "main"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from ..config import ConfigError

    try:
        return args.func(args)
    except (CLIError, ConfigError, FileNotFoundError) as e:
        print(f"unpaired {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only folder, a full disk: one line naming the path
        print(f"unpaired {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # clear one-line messages for the errors users cause; tracebacks for bugs
        from ..compat import ImportMismatch
        from ..data import BadImageError, UnknownDomainError
        from ..metrics.evaluate import EvaluationError
        from ..runfolder import CardVersionError, NonFiniteWeightsError
        from ..safefiles import BadFileError
        from ..training.trainer import NonFiniteLossError

        if isinstance(e, (BadImageError, NonFiniteLossError, ImportMismatch, UnknownDomainError, EvaluationError,
                          BadFileError, NonFiniteWeightsError, CardVersionError)):
            print(f"unpaired {args.command}: error: {e}", file=sys.stderr)
            return 1
        raise
