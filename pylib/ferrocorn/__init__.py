"""Python side of ferrocorn, frozen into the binary.

``ferrocorn.loader`` finds the WSGI callable named on the command line;
``ferrocorn.wsgi`` holds what the server hands the app besides native types
(``wsgi.file_wrapper``); ``ferrocorn.failed`` answers every request with the
load error while ``--reload`` waits for a broken app to be fixed.
"""
