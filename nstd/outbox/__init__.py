"""What lands in the folders: results and loss logs, thumbnails, loss plots, inputs filed when their jobs end."""
