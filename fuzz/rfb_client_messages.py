"""atheris harness: a viewer's client-to-server messages into corral.rfb's ClientMessageReader."""

from _relay_target import client_messages_target, main

if __name__ == "__main__":
    main(client_messages_target)
