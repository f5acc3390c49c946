"""Modal dialogs: blocking errors, confirmations and the keys of a screen."""

from app.dialogs.confirm import ConfirmDialog
from app.dialogs.error import ErrorDialog
from app.dialogs.help import HelpScreen, KeyHelp, screen_keys, screen_name

__all__ = ["ConfirmDialog", "ErrorDialog", "HelpScreen", "KeyHelp", "screen_keys", "screen_name"]
