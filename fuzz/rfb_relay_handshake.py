"""atheris harness: a viewer's handshake into corral.rfb's RelayServerHandshake, then messages."""

from _relay_target import main, relay_handshake_target

if __name__ == "__main__":
    main(relay_handshake_target)
