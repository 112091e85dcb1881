"""atheris harness: the copyrect decoder of corral.rfb (see _rfb_target.py)."""

from _rfb_target import Encoding, main, rect_target

if __name__ == "__main__":
    main(rect_target(Encoding.COPY_RECT))
