"""Local stand-ins for the services the function talks to: a ZEGO emulator, moto helpers."""
