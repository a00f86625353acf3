"""The shared kernel: plumbing every service uses, and no business rules."""
