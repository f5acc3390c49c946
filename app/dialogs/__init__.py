"""Modal dialogs: blocking errors and confirmations."""

from app.dialogs.confirm import ConfirmDialog
from app.dialogs.error import ErrorDialog

__all__ = ["ConfirmDialog", "ErrorDialog"]
