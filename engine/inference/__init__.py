"""A checkpoint's network ready for inference, and the sliding windows it embeds: shared by validate and apply."""
