"""What a finished run means: statistics over trials, the recommended round, exports and the deployment bench."""
