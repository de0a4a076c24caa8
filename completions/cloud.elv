
set edit:completion:arg-completer[cloud] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) CLOUD_COMPLETE="elvish" cloud -- $@words) | to-lines
}

