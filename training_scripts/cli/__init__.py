"""One module per ``python -m training_scripts`` command (see ``training_scripts.__main__``)."""
