complete --keep-order --exclusive --command cloud --arguments "(CLOUD_COMPLETE=fish cloud -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
