"""atheris harness: whole server streams into corral.rfb (handshake, security, messages)."""

from _rfb_target import main, stream_target

if __name__ == "__main__":
    main(stream_target)
