#!/usr/bin/env python3
"""Makes the demo doctors' photos: a 96×96 PNG per doctor of seeds/doctors.json, a symmetric pattern in a colour
drawn from the doctor's id (an identicon), so the catalogue has pictures without pictures of real people. Run it
again after adding a doctor: `python3 seeds/photos/make_photos.py`. Standard library only."""

import hashlib
import json
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE, CELLS = 96, 6


def png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(value for pixel in row for value in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def photo(doctor_id: str) -> bytes:
    digest = hashlib.sha256(doctor_id.encode()).digest()
    hue = digest[0] / 255
    # Calm hospital colours: a teal-to-blue range, never garish.
    colour = tuple(int(v) for v in (40 + 60 * hue, 120 + 60 * (1 - hue), 150 + 80 * hue))
    background = (240, 244, 247)
    cell = SIZE // CELLS
    on = [[digest[(row * 3 + min(col, CELLS - 1 - col)) % 32] % 2 == 0 for col in range(CELLS)] for row in range(CELLS)]
    return png([[colour if on[y // cell][x // cell] else background for x in range(SIZE)] for y in range(SIZE)])


if __name__ == "__main__":
    doctors = json.loads((HERE.parent / "doctors.json").read_text())["doctors"]
    for doctor in doctors:
        (HERE / f"{doctor['id']}.png").write_bytes(photo(doctor["id"]))
    print(f"{len(doctors)} photos in {HERE}")
