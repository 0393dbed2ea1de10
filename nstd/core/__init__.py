"""The vocabulary every stage shares: errors, job types, parameter flags, names, images, safe opens, logs."""
