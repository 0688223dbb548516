#!/usr/bin/env python3
"""Generate small but valid detector files for LiberTEM 0.16.0's `dist` tests.

Usage:  python3 generate.py OUTDIR

OUTDIR gets the folder layout LiberTEM's tests expect under TESTDATA_BASE_PATH:

    OUTDIR/
      mrc/20200821_92978_movie.mrc            MRC2014 image stack, 4 x 1024x1024 int8
      dm/2018-7-17_15_29_000{0,1,2}.dm4       3 DM4 files, each one 3838x3710 uint8 image
      Capture52/Capture52_.gtg                K2IS: DM4 tag file with "SI Dimensions" (1 x 18)
      Capture52/Capture52_{1..8}.bin          K2IS: 8 sector files, 19 frames each
      frms6/C16_15_24_151203_019.hdr          FRMS6 (pnCCD): INI header, nav 8x8
      frms6/C16_15_24_151203_019_000.frms6    FRMS6: 4 dark frames
      frms6/C16_15_24_151203_019_00{1,2}.frms6  FRMS6: 2 x 32 signal frames, 264x264
      default.mib, default.hdr                Merlin/Medipix: 1024 frames 256x256 U08 (+ .hdr)
      default.blo                             NanoMegas blockfile: 8x8 x 144x144 uint8
      EMPAD/acquisition_12_pretty.xml         EMPAD XML (4x4 scan)
      EMPAD/scan_11_x4_y4.raw                 EMPAD: 16 x 130x128 float32
      TVIPS/rec_20200623_080237_000.tvips     TVIPS v2: 10 x 512x512 uint8

Only numpy and the standard library are used.  Output is deterministic: the
pixel values are fixed arithmetic patterns (no RNG, no clock), so two runs give
byte-identical files.  `check.py` re-computes the same patterns (via
`expected_frame()` below) and compares them with what LiberTEM reads.

Atomicity (handled here, not by the caller): everything is first written to
OUTDIR/.partial/.  Only when all files are complete is each top-level entry
renamed into OUTDIR (replacing an older copy), and then OUTDIR/.complete is
written (atomically, via rename) as the very last step.  So
  * a file visible in OUTDIR (outside .partial) is always complete, and
  * OUTDIR/.complete exists only after a fully successful run; a run killed
    at any point leaves no .complete (the previous one is deleted first).
The caller should treat a missing OUTDIR/.complete as "regenerate".  Leftover
OUTDIR/.partial/ from a killed run is removed by the next run.
"""

import json
import os
import shutil
import struct
import sys
import time

import numpy as np

GENERATOR_VERSION = 1
LIBERTEM_VERSION = "0.16.0"


# ---------------------------------------------------------------------------
# Pixel patterns (shared with check.py)
# ---------------------------------------------------------------------------

def _ramp(shape, idx, modulo):
    """Cheap deterministic pattern: (3*y + 5*x + 7*idx) % modulo, as int64."""
    h, w = shape
    y = np.arange(h, dtype=np.int64)[:, None]
    x = np.arange(w, dtype=np.int64)[None, :]
    return (3 * y + 5 * x + 7 * idx) % modulo


# Per-format parameters.  check.py imports these, so keep them the single
# source of truth.
MRC_FRAMES = 4
MRC_SIG = (1024, 1024)

DM_FILES = 3
DM_SIG = (3838, 3710)  # (height, width)

K2_NAV = (1, 18)
K2_SIG = (1860, 2048)
K2_BLOCK_SIZE = 0x5758
K2_HEADER_SIZE = 40
K2_DATA_SIZE = K2_BLOCK_SIZE - K2_HEADER_SIZE  # 22320 bytes = 930*16 12-bit pixels
K2_BLOCKS_PER_FRAME = 32  # per sector
K2_SECTORS = 8
K2_FILE_FRAMES = 19  # frame "A" (pre-shutter) + 18 shutter-active frames
K2_FIRST_FRAME_ID = 100

FRMS6_NAV = (8, 8)
FRMS6_SIG = (264, 264)
FRMS6_RAW = (132, 528)  # (height, width) of a frame as stored in the file
FRMS6_DARK_FRAMES = 4
FRMS6_FRAMES_PER_FILE = 32

MIB_NAV = (32, 32)
MIB_SIG = (256, 256)

BLO_NAV = (8, 8)
BLO_DP = 144

EMPAD_NAV = (4, 4)
EMPAD_SIG = (128, 128)
EMPAD_RAW_SIG = (130, 128)

TVIPS_FRAMES = 10
TVIPS_SIG = (512, 512)


def frms6_dark():
    h, w = FRMS6_SIG
    y = np.arange(h, dtype=np.int64)[:, None]
    x = np.arange(w, dtype=np.int64)[None, :]
    return 1000 + (y + x) % 16


def k2_block_values(frame, sector, blockidx):
    """12-bit values of one 930x16 K2IS block, one value per block row.

    `frame` is the frame index *by position in the sector file*
    (file offset // (32 blocks)), `blockidx` the block position within it.
    """
    base = (frame * 37 + sector * 11 + blockidx * 3) % 2048
    return (base + np.arange(930, dtype=np.int64)) % 4096


def expected_frame(fmt, idx):
    """The frame LiberTEM should decode for flat navigation index `idx`."""
    if fmt == "mrc":
        return _ramp(MRC_SIG, idx, 100)
    if fmt == "dm":
        return _ramp(DM_SIG, idx, 251)
    if fmt == "k2is":
        # dataset frame idx == sector-file frame idx (see gen_k2is)
        out = np.zeros(K2_SIG, dtype=np.int64)
        for s in range(K2_SECTORS):
            for b in range(K2_BLOCKS_PER_FRAME):
                by, bx = b // 16, 15 - (b % 16)
                vals = k2_block_values(idx, s, b)
                out[by * 930:(by + 1) * 930,
                    s * 256 + bx * 16:s * 256 + bx * 16 + 16] = vals[:, None]
        return out
    if fmt == "frms6":
        # LiberTEM subtracts the mean dark frame by default
        return _ramp(FRMS6_SIG, idx, 50)
    if fmt == "mib":
        return _ramp(MIB_SIG, idx, 64)
    if fmt == "blo":
        return _ramp((BLO_DP, BLO_DP), idx, 256)
    if fmt == "empad":
        return _ramp(EMPAD_SIG, idx, 97) * 0.5
    if fmt == "tvips":
        return _ramp(TVIPS_SIG, idx, 256)
    raise ValueError(fmt)


# ---------------------------------------------------------------------------
# Output bookkeeping
# ---------------------------------------------------------------------------

class Out:
    def __init__(self, stage):
        self.stage = stage
        self.files = []

    def path(self, rel):
        p = os.path.join(self.stage, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def done(self, rel):
        size = os.path.getsize(os.path.join(self.stage, rel))
        self.files.append((rel, size))
        print(f"wrote {rel} ({size} bytes, {size / 2**20:.1f} MiB)", flush=True)

    def write_bytes(self, rel, chunks):
        with open(self.path(rel), "wb") as f:
            for c in chunks:
                f.write(c)
        self.done(rel)


# ---------------------------------------------------------------------------
# MRC (read by ncempy.io.mrc.fileMRC)
# ---------------------------------------------------------------------------
# MRC2014: a 1024-byte header of 256 little-endian 4-byte words, an optional
# extended header of NSYMBT bytes, then the voxels in C order (sections, rows,
# columns).  Words (1-based):
#   1-3 NX NY NZ      columns, rows, sections (NZ = number of frames)
#   4   MODE          0 = int8, 1 = int16, 2 = float32, 6 = uint16
#   5-7 N[XYZ]START   0
#   8-10 MX MY MZ     sampling; ISPG=0 with MZ=1 marks an image *stack*.
#                     ncempy reports (MZ, MY, MX) as gridSize and LiberTEM takes
#                     sig_shape = gridSize without the 1s, so MZ must be 1.
#   11-13 CELLA       cell size in Angstrom (float)  14-16 CELLB angles 90,90,90
#   17-19 MAPC/R/S    1,2,3      20-22 DMIN DMAX DMEAN (float)
#   23 ISPG = 0       24 NSYMBT = 0 (ncempy: data offset = 1024 + NSYMBT)
#   25-49 EXTRA; EXTTYP at word 27, NVERSION (20140) at word 28
#   50-52 ORIGIN      53 MAP = "MAP "   54 MACHST = 44 44 00 00 (little endian)
#   55 RMS            56 NLABL        57-256 ten 80-character labels
# The dist test asserts sig (1024, 1024) and uses a random roi of size 4, so
# the stack must have exactly 4 frames.

def gen_mrc(out):
    rel = "mrc/20200821_92978_movie.mrc"
    nz = MRC_FRAMES
    ny, nx = MRC_SIG
    data = np.stack([_ramp(MRC_SIG, i, 100) for i in range(nz)]).astype(np.int8)
    hdr = bytearray(1024)
    struct.pack_into("<10i", hdr, 0, nx, ny, nz, 0, 0, 0, 0, nx, ny, 1)
    struct.pack_into("<6f", hdr, 40, float(nx), float(ny), 1.0, 90.0, 90.0, 90.0)
    struct.pack_into("<3i", hdr, 64, 1, 2, 3)
    struct.pack_into("<3f", hdr, 76, float(data.min()), float(data.max()),
                     float(data.mean(dtype=np.float64)))
    struct.pack_into("<2i", hdr, 88, 0, 0)  # ISPG, NSYMBT
    # EXTTYP (word 27) stays zero: there is no extended header
    struct.pack_into("<i", hdr, 108, 20140)  # NVERSION (word 28)
    struct.pack_into("<3f", hdr, 196, 0.0, 0.0, 0.0)  # ORIGIN
    hdr[208:212] = b"MAP "
    hdr[212:216] = bytes([0x44, 0x44, 0x00, 0x00])
    struct.pack_into("<f", hdr, 216, float(data.std(dtype=np.float64)))
    struct.pack_into("<i", hdr, 220, 1)  # NLABL
    label = b"LiberTEM dist test data: synthetic 4-frame movie".ljust(80)
    hdr[224:304] = label
    out.write_bytes(rel, [bytes(hdr), data.tobytes()])


# ---------------------------------------------------------------------------
# DM4 (read by ncempy.io.dm.fileDM, also used for the K2IS .gtg)
# ---------------------------------------------------------------------------
# File header (big endian): u4 version = 4, u8 length of the tag data
# (= file size - 24), u4 byte order = 1 (tag *values* are little endian).
# Then the root tag group:  u1 is_sorted, u1 is_open, u8 BE number of entries.
# Each entry:  u1 kind (20 = group, 21 = data), u2 BE label length, label,
#              u8 BE size of the rest of the entry (DM4 only), then
#   group:  u1 is_sorted, u1 is_open, u8 BE n, n entries
#   data:   "%%%%", u8 BE n_info, n_info * u8 BE type info, value bytes
#     simple value: info = [type]  (2 s16, 3 s32, 4 u16, 5 u32, 6 f32, 7 f64,
#                                   8 bool, 9 char, 10 octet, 11 s64, 12 u64)
#     array:        info = [20, element type, count]  (strings are u16 arrays)
# An empty label means an unnamed list element; ncempy names those "1", "2"...
# The file ends with 8 zero bytes.
#
# ncempy's fileDM: an image is counted (numObjects) when a tag path contains
# "ImageData.Calibrations.Dimension.1.Scale"; "Data" arrays give
# dataOffset/dataSize, "DataType" gives the DM image type (6 = uint8) and
# "Dimensions.1"/".2" give x/y size.  LiberTEM's stacked DM reader uses
# object 0 when numObjects == 1 (else object 1, after a thumbnail).

def _be(fmt, *v):
    return struct.pack(">" + fmt, *v)


_DM_SIMPLE = {"s32": (3, "<i"), "u32": (5, "<I"), "f32": (6, "<f"),
              "f64": (7, "<d"), "bool": (8, "<B"), "u16": (4, "<H")}


class DMVal:
    def __init__(self, kind, value):
        self.kind, self.value = kind, value


def _dm_data(value):
    """-> (info list, list of value chunks)"""
    if isinstance(value, DMVal):
        code, fmt = _DM_SIMPLE[value.kind]
        return [code], [struct.pack(fmt, value.value)]
    if isinstance(value, str):
        enc = value.encode("utf-16-le")
        return [20, 4, len(value)], [enc]
    if isinstance(value, np.ndarray):
        code = {np.dtype(np.uint8): 10, np.dtype(np.uint16): 4,
                np.dtype(np.float32): 6}[value.dtype]
        return [20, code, value.size], [memoryview(np.ascontiguousarray(value)).cast("B")]
    raise TypeError(type(value))


def _dm_entries(items):
    """items: list of (label, value) where value is a list (group) or data."""
    chunks = [bytes([1, 0]), _be("Q", len(items))]
    for label, value in items:
        lab = label.encode("latin-1")
        if isinstance(value, list):
            body = _dm_entries(value)
            kind = 20
        else:
            info, vals = _dm_data(value)
            body = [b"%%%%", _be("Q", len(info))] + [_be("Q", i) for i in info] + vals
            kind = 21
        size = sum(len(c) for c in body)
        chunks += [bytes([kind]), _be("H", len(lab)), lab, _be("Q", size)] + body
    return chunks


def write_dm4(out, rel, tree):
    body = _dm_entries(tree) + [bytes(8)]
    length = sum(len(c) for c in body)
    out.write_bytes(rel, [_be("I", 4), _be("Q", length), _be("I", 1)] + body)
    return 16 + length


def _dm_image_tree(img, name):
    h, w = img.shape
    cal = lambda units, scale: [("Origin", DMVal("f32", 0.0)),  # noqa: E731
                                ("Scale", DMVal("f32", scale)),
                                ("Units", units)]
    image = [
        ("ImageData", [
            ("Calibrations", [
                ("Brightness", cal("", 1.0)),
                ("Dimension", [("", cal("1/nm", 0.01)), ("", cal("1/nm", 0.01))]),
                ("DisplayCalibratedUnits", DMVal("bool", 1)),
            ]),
            ("Data", img),
            ("DataType", DMVal("s32", 6)),  # 6 = uint8
            ("Dimensions", [("", DMVal("u32", w)), ("", DMVal("u32", h))]),
            ("PixelDepth", DMVal("u32", 1)),
        ]),
        ("ImageTags", [
            ("Acquisition", [
                ("Device", [("Name", "LiberTEM synthetic")]),
            ]),
        ]),
        ("Name", name),
        ("UniqueID", [("1", DMVal("u32", 1)), ("2", DMVal("u32", 2)),
                      ("3", DMVal("u32", 3)), ("4", DMVal("u32", 4))]),
    ]
    return [
        ("ApplicationBounds", [("", DMVal("s32", 0)), ("", DMVal("s32", 0)),
                               ("", DMVal("s32", 1024)), ("", DMVal("s32", 1024))]),
        ("ImageList", [("", image)]),
        ("Image Behavior", [("ViewDisplayID", DMVal("u32", 8))]),
    ]


def gen_dm(out):
    # The dist test globs dm/2018-7-17*.dm4, sorts, and uses a random roi with
    # one entry per file; each file holds a single 2D image (z size 1).
    h, w = DM_SIG
    for i in range(DM_FILES):
        rel = f"dm/2018-7-17_15_29_{i:04d}.dm4"
        img = _ramp(DM_SIG, i, 251).astype(np.uint8)
        size = write_dm4(out, rel, _dm_image_tree(img, f"2018-7-17_15_29_{i:04d}"))
        # LiberTEM's StackedDMFile slices mem[offset:-skip_end]; skip_end is
        # only computed when the file size is not a multiple of the frame size.
        assert size % (h * w) != 0


# ---------------------------------------------------------------------------
# K2IS (LiberTEM's own reader, libertem/io/dataset/k2is.py)
# ---------------------------------------------------------------------------
# A K2IS STEM acquisition is a .gtg file (a DM4 tag file, no image) plus 8
# sector files *_1.bin ... *_8.bin, one per 256-pixel-wide column strip of the
# 1860x2048 detector.  A sector file is a sequence of 0x5758-byte blocks:
#   40-byte big-endian header:
#     u4 sync = 0xFFFF0055, 4 pad, u1 version, u1 flags (bit 0 = shutter
#     active), 6 pad, u4 block_count, u2 width = 256, u2 height = 1860,
#     u4 frame_id, u2 pixel_x_start, u2 pixel_y_start, u2 pixel_x_end,
#     u2 pixel_y_end (coordinates within the sector), u4 block_size = 0x5758
#   22320 bytes of 12-bit little-endian packed pixels (2 pixels in 3 bytes:
#     p0 = b0 | (b1 & 0xF) << 8, p1 = b1 >> 4 | b2 << 4), a 930x16 block.
# 32 blocks form one frame of one sector: block b covers rows
# (b // 16) * 930 .. +930 and sector columns (15 - b % 16) * 16 .. +16.
#
# How LiberTEM syncs (K2Syncer) and why the files look the way they do:
#  1. all sectors advance to the block whose block_count equals the largest
#     block_count among the sectors' first blocks;
#  2. if any sector's next 32 blocks mix frame ids, every sector advances to
#     the first block whose frame_id differs from sector 0's first frame_id;
#  3. each sector advances to the first block with the shutter flag set (a
#     search that probes block 0 and then blocks 12800, 25600, ... - so with
#     a small file the first synced block must already be shutter-active);
#  4. if the .gtg has "SI Dimensions" (needed: it gives the 2D nav shape the
#     test indexes as roi[0, 17]), LiberTEM starts reading ONE FRAME BEFORE the
#     synced position ("sync flag appears to be set one frame too late").
# So every sector needs >= 32 blocks before the first shutter-active frame,
# and steps 1-2 must skip exactly those.  Layout (19 frames, 608 blocks each):
#   sectors 1-7 (files _1.._7): frame A = id 100 (32 blocks, shutter flag 0),
#     then frames 101..118 (shutter active); block_count = frame_id*32 + b.
#   sector 8 (file _8): starts with a stray last block of frame 99
#     (block_count 3199), then frame 100 blocks 0..30 (its block 31 was lost),
#     then frames 101..118 like the others.  Step 1 moves sector 8 to offset 1
#     (block_count 3200), its next 32 blocks mix ids 100/101, so step 2 moves
#     all sectors to offset 32 (frame 101); step 4 goes back to offset 0.
# Result: 18 frames after sync = image_count = prod(nav (1, 18)); dataset
# frame k is sector-file frame k (k = 0..17); frame 118 is never read.
# The pixel payload of a block depends only on its *position* in the file
# (frame = offset // 32, b = offset % 32), so decoded frames are regular.

_K2_HEADER = np.dtype([
    ("sync", ">u4"), ("pad1", "V4"), ("version", "u1"), ("flags", "u1"),
    ("pad2", "V6"), ("block_count", ">u4"), ("width", ">u2"), ("height", ">u2"),
    ("frame_id", ">u4"), ("x0", ">u2"), ("y0", ">u2"), ("x1", ">u2"),
    ("y1", ">u2"), ("block_size", ">u4"), ("data", "u1", (K2_DATA_SIZE,)),
])
assert _K2_HEADER.itemsize == K2_BLOCK_SIZE


def _k2_pack12(vals):
    """vals: (..., 930) row values -> (..., 22320) packed bytes (16 px/row)."""
    v = vals.astype(np.uint16)
    trip = np.stack([v & 0xFF, ((v >> 8) & 0x0F) | ((v & 0x0F) << 4), v >> 4],
                    axis=-1).astype(np.uint8)  # (..., 930, 3): two equal pixels
    rows = np.broadcast_to(trip[..., None, :], trip.shape[:-1] + (8, 3))
    return rows.reshape(vals.shape[:-1] + (K2_DATA_SIZE,))


def gen_k2is(out):
    n_blocks = K2_FILE_FRAMES * K2_BLOCKS_PER_FRAME
    offs = np.arange(n_blocks)
    pos_frame, pos_b = offs // 32, offs % 32
    ny, nx = K2_NAV
    # .gtg: tags only.  K2ISDataSet reads ".SI Dimensions.Size Y/X".
    gtg = [
        ("SI Dimensions", [("Size X", DMVal("s32", nx)), ("Size Y", DMVal("s32", ny))]),
        ("SI Image Tags", [("SI", [("Acquisition", [("Spatial Sampling", [
            ("Height (pixels)", DMVal("u32", ny)),
            ("Width (pixels)", DMVal("u32", nx)),
        ])])])]),
    ]
    write_dm4(out, "Capture52/Capture52_.gtg", gtg)

    for s in range(K2_SECTORS):
        rec = np.zeros(n_blocks, dtype=_K2_HEADER)
        frame_id = K2_FIRST_FRAME_ID + pos_frame
        b = pos_b.copy()
        if s == K2_SECTORS - 1:
            # stray block of the previous frame, then frame A without its
            # last block (see the layout notes above)
            frame_id[0], b[0] = K2_FIRST_FRAME_ID - 1, 31
            b[1:32] = np.arange(31)
        rec["sync"] = 0xFFFF0055
        rec["version"] = 1
        rec["flags"] = (frame_id > K2_FIRST_FRAME_ID).astype(np.uint8)
        rec["block_count"] = frame_id * 32 + b
        rec["width"], rec["height"] = 256, 1860
        rec["frame_id"] = frame_id
        rec["x0"] = (15 - b % 16) * 16
        rec["x1"] = rec["x0"] + 15
        rec["y0"] = (b // 16) * 930
        rec["y1"] = rec["y0"] + 929
        rec["block_size"] = K2_BLOCK_SIZE
        vals = np.stack([k2_block_values(f, s, bb) for f, bb in zip(pos_frame, pos_b)])
        rec["data"] = _k2_pack12(vals)
        rel = f"Capture52/Capture52_{s + 1}.bin"
        with open(out.path(rel), "wb") as f:
            rec.tofile(f)
        out.done(rel)


# ---------------------------------------------------------------------------
# FRMS6 (PNDetector pnCCD; LiberTEM's own reader, frms6.py)
# ---------------------------------------------------------------------------
# BASE.hdr: INI file, section [measurementInfo] with darkframes, signalframes,
# dwelltimemicroseconds, gain (ints), stemimagesize "YxX" (-> nav shape as
# written) and readoutmode '"bin: B, windowing: H x W"' (quotes included).
# BASE_000.frms6 holds the dark frames (LiberTEM averages them and subtracts
# the mean when enable_offset_correction=True, the default); BASE_001.frms6,
# BASE_002.frms6, ... hold the signal frames.  Each .frms6 file:
#   1024-byte little-endian file header: u2 header_size = 1024,
#     u2 frame_header_size = 64, 3 pad, u1 version = 6, 80 bytes comment,
#     u2 width, u2 height, 928 bytes comment, u4 num_frames
#   per frame: 64-byte frame header (4 pad, u4 timestamp_s, u4 timestamp_us,
#     u4 frame_number, 12 pad, 36 comment) + height*width '<u2' pixels.
# The stored frame is 132 x 528: the detector's two halves side by side.  The
# 264x264 signal frame F maps as: raw[r, :264] = F[r] (top half) and
# raw[r, 264:] = F[263 - r, ::-1] (bottom half, rotated by 180 degrees).
# Data: dark frames all equal D = 1000 + (y+x) % 16; signal frame i is
# D + pattern_i, so the offset-corrected frames are exactly pattern_i.

_FRMS6_FILE_HEADER = np.dtype([
    ("header_size", "<u2"), ("frame_header_size", "<u2"), ("pad", "V3"),
    ("version", "u1"), ("comment_1", "S80"), ("width", "<u2"), ("height", "<u2"),
    ("comment_2", "S928"), ("num_frames", "<u4"),
])
assert _FRMS6_FILE_HEADER.itemsize == 1024


def _frms6_raw(frame):
    h, w = FRMS6_RAW
    raw = np.empty((h, w), dtype="<u2")
    raw[:, :w // 2] = frame[:h]
    raw[:, w // 2:] = frame[h:][::-1, ::-1]
    return raw


def _write_frms6(out, rel, frames, first_number):
    h, w = FRMS6_RAW
    rec_dt = np.dtype([("pad", "V4"), ("ts_s", "<u4"), ("ts_us", "<u4"),
                       ("frame_number", "<u4"), ("pad2", "V12"), ("comment", "S36"),
                       ("data", "<u2", (h, w))])
    hdr = np.zeros(1, dtype=_FRMS6_FILE_HEADER)
    hdr["header_size"], hdr["frame_header_size"], hdr["version"] = 1024, 64, 6
    hdr["width"], hdr["height"], hdr["num_frames"] = w, h, len(frames)
    hdr["comment_1"] = b"LiberTEM synthetic pnCCD data"
    rec = np.zeros(len(frames), dtype=rec_dt)
    rec["ts_s"] = 1449150000 + np.arange(len(frames))
    rec["frame_number"] = first_number + np.arange(len(frames))
    for i, fr in enumerate(frames):
        rec["data"][i] = _frms6_raw(fr)
    with open(out.path(rel), "wb") as f:
        hdr.tofile(f)
        rec.tofile(f)
    out.done(rel)


def gen_frms6(out):
    base = "frms6/C16_15_24_151203_019"
    ny, nx = FRMS6_NAV
    n_sig = ny * nx
    hdr = (
        "[measurementInfo]\n"
        f"darkframes={FRMS6_DARK_FRAMES}\n"
        f"signalframes={n_sig}\n"
        "dwelltimemicroseconds=1000\n"
        "gain=1\n"
        f"stemimagesize={ny}x{nx}\n"
        f'readoutmode="bin: 1, windowing: {FRMS6_SIG[0]} x {FRMS6_SIG[1]}"\n'
        "comment=LiberTEM synthetic test data\n"
    )
    out.write_bytes(base + ".hdr", [hdr.encode("ascii")])
    dark = frms6_dark()
    _write_frms6(out, base + "_000.frms6", [dark] * FRMS6_DARK_FRAMES, 0)
    n_files = n_sig // FRMS6_FRAMES_PER_FILE
    assert n_files * FRMS6_FRAMES_PER_FILE == n_sig
    for k in range(n_files):
        idxs = range(k * FRMS6_FRAMES_PER_FILE, (k + 1) * FRMS6_FRAMES_PER_FILE)
        frames = [dark + _ramp(FRMS6_SIG, i, 50) for i in idxs]
        _write_frms6(out, f"{base}_{k + 1:03d}.frms6", frames, idxs[0])


# ---------------------------------------------------------------------------
# MIB (Quantum Detectors Merlin; LiberTEM's own reader, mib.py)
# ---------------------------------------------------------------------------
# A .mib file is a sequence of frames, each an ASCII header followed by the
# pixels.  Single-chip header (384 bytes, comma separated, NUL padded):
#   MQ1, sequence number (1-based, %06d), header size "00384", number of chips
#   "01", width "0256", height "0256", pixel type U08/U16/U32 (R64 = raw),
#   layout "   1x1", chip select "01", timestamp, shutter time (s), counter,
#   colour mode, gain mode, 8 thresholds (keV), DAC format "3RX", DAC values,
#   then the extended "MQ1A", ISO timestamp, shutter time in ns, counter depth,
#   and a trailing comma.  LiberTEM takes the bit depth from the LAST
#   non-padding field, so the NUL padding must directly follow that comma.
# U08 pixels are plain bytes (U16/U32 would be big endian).  1024 frames of
# 6-bit data (values 0..63) for the test's nav_shape (32, 32).
# default.hdr is the acquisition header Merlin writes next to the .mib files
# (tab-separated "key:\tvalue" lines between "HDR," and "End"); the dist test
# passes nav_shape explicitly and does not need it, but it makes
# ctx.load("mib", path="default.hdr") work too.

def _mib_header(seq):
    fields = [
        "MQ1", f"{seq:06d}", "00384", "01", f"{MIB_SIG[1]:04d}", f"{MIB_SIG[0]:04d}",
        "U08", "   1x1", "01", "2020-05-18 16:51:49.971626", "0.001000",
        "0", "0", "0",
        "1.200000E+2", "5.110000E+2", "0.000000E+0", "0.000000E+0",
        "0.000000E+0", "0.000000E+0", "0.000000E+0", "0.000000E+0",
        "3RX", "175", "511", "000", "000", "000", "000", "000", "000", "125", "255",
        "125", "125", "100", "100", "082", "100", "087", "030", "128", "004", "255",
        "129", "128", "176", "168", "511", "511",
        "MQ1A", "2020-05-18T14:51:49.971626178Z", "1000000ns", "6",
    ]
    h = (",".join(fields) + ",").encode("ascii")
    assert len(h) <= 384, len(h)
    return h.ljust(384, b"\x00")


def gen_mib(out):
    ny, nx = MIB_NAV
    n = ny * nx
    rec_dt = np.dtype([("header", "S384"), ("data", "u1", MIB_SIG)])
    rec = np.zeros(n, dtype=rec_dt)
    rec["header"] = [_mib_header(i + 1) for i in range(n)]
    base = _ramp(MIB_SIG, 0, 64)
    for i in range(n):
        rec["data"][i] = (base + 7 * i) % 64
    with open(out.path("default.mib"), "wb") as f:
        rec.tofile(f)
    out.done("default.mib")
    hdr = "".join(f"{k}:\t{v}\n" for k, v in [
        ("Time and Date Stamp (day, mnth, yr, hr, min, s)", "18/05/2020 16:51:48"),
        ("Chip ID", "W529_F5,-,-,-"),
        ("Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX)", "Medipix 3RX"),
        ("Assembly Size (NX1, 2X2)", "   1x1"),
        ("Chip Mode  (SPM, CSM, CM, CSCM)", "SPM"),
        ("Counter Depth (number)", "6"),
        ("Gain", "SLGM"),
        ("Active Counters", "Alternating"),
        ("Thresholds (keV)", "1.200000E+2,5.110000E+2,0.000000E+0,0.000000E+0,"
                             "0.000000E+0,0.000000E+0,0.000000E+0,0.000000E+0"),
        ("Acquisition Type (Normal, Th_scan, Config)", "Normal"),
        ("Frames in Acquisition (Number)", str(n)),
        ("Frames per Trigger (Number)", str(nx)),
        ("Trigger Start (Positive, Negative, Internal)", "Rising Edge"),
        ("Trigger Stop (Positive, Negative, Internal)", "Rising Edge"),
        ("Sensor Bias (V)", "120 V"),
        ("Readout System", "Merlin Quad"),
        ("Software Version", "0.67.0.9"),
    ])
    out.write_bytes("default.hdr", [("HDR,\t\n" + hdr + "End\t").encode("ascii")])


# ---------------------------------------------------------------------------
# BLO (NanoMegas ASTAR blockfile; LiberTEM's own reader, blo.py)
# ---------------------------------------------------------------------------
# Little-endian layout (as written by RosettaSciIO / HyperSpy):
#   0x000  header, 240 bytes: ID "IMGBLO" (6), u2 MAGIC 0x0102, u4 Data_offset_1
#          (virtual bright field) = 0x1000, u4 Data_offset_2 (patterns),
#          u4 UNKNOWN1 = 131141, u2 DP_SZ, u2 DP_rotation, u2 NX, u2 NY,
#          u2 Scan_rotation, f8 SX, f8 SY (nm), u4 Beam_energy (V), u2 SDP,
#          u4 Camera_length, f8 Acquisition_time (serial date),
#          8 x f8 Centering, 14 x f8 Distortion
#   then a free-text note, zero padded up to Data_offset_1
#   0x1000 virtual bright field: NY*NX uint8, zero padded up to Data_offset_2
#          (= 0x1000 + NX*NY, plus (that % 16) - the writer's quirk)
#   frames: each u2 0x55AA, u4 frame index, DP_SZ*DP_SZ uint8.
# MAGIC 0x0102 means "no 'Blo Bit Depth' metadata" -> LiberTEM reads uint8.

_BLO_HEADER = np.dtype([
    ("ID", "S6"), ("MAGIC", "<u2"), ("Data_offset_1", "<u4"), ("Data_offset_2", "<u4"),
    ("UNKNOWN1", "<u4"), ("DP_SZ", "<u2"), ("DP_rotation", "<u2"), ("NX", "<u2"),
    ("NY", "<u2"), ("Scan_rotation", "<u2"), ("SX", "<f8"), ("SY", "<f8"),
    ("Beam_energy", "<u4"), ("SDP", "<u2"), ("Camera_length", "<u4"),
    ("Acquisition_time", "<f8"), ("Centering", "<f8", (8,)), ("Distortion", "<f8", (14,)),
])
assert _BLO_HEADER.itemsize == 240


def gen_blo(out):
    ny, nx = BLO_NAV
    dp = BLO_DP
    off1 = 0x1000
    off2 = off1 + nx * ny
    off2 += off2 % 16
    hdr = np.zeros(1, dtype=_BLO_HEADER)
    hdr["ID"], hdr["MAGIC"] = b"IMGBLO", 0x0102
    hdr["Data_offset_1"], hdr["Data_offset_2"] = off1, off2
    hdr["UNKNOWN1"], hdr["DP_SZ"], hdr["NX"], hdr["NY"] = 131141, dp, nx, ny
    hdr["SX"] = hdr["SY"] = 1.0
    hdr["Beam_energy"], hdr["SDP"], hdr["Camera_length"] = 200000, 100, 1000
    hdr["Acquisition_time"] = 43831.5  # 2020-01-01 12:00 as serial date
    frames = np.stack([_ramp((dp, dp), i, 256) for i in range(nx * ny)]).astype(np.uint8)
    vbf = frames.reshape(nx * ny, -1).mean(axis=1).astype(np.uint8)
    rec = np.zeros(nx * ny, dtype=[("magic", "<u2"), ("id", "<u4"), ("img", "u1", (dp, dp))])
    rec["magic"], rec["id"], rec["img"] = 0x55AA, np.arange(nx * ny), frames
    head = hdr.tobytes() + b"LiberTEM synthetic blockfile"
    out.write_bytes("default.blo", [
        head.ljust(off1, b"\x00"), vbf.tobytes().ljust(off2 - off1, b"\x00"), rec.tobytes(),
    ])


# ---------------------------------------------------------------------------
# EMPAD (LiberTEM's own reader, empad.py)
# ---------------------------------------------------------------------------
# acquisition XML: <raw_file filename="..."/> (resolved next to the XML) and
# <scan_parameters mode="acquire"> with scan_resolution_x/_y (nav = (y, x)).
# The .raw file is headerless: per frame 130 rows x 128 columns little-endian
# float32, of which the last 2 rows are a per-frame footer (LiberTEM drops
# them, sig = 128x128).  File size must be 130*128*4 * prod(nav).

def gen_empad(out):
    ny, nx = EMPAD_NAV
    raw_name = f"scan_11_x{nx}_y{ny}.raw"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<root>
  <timestamp>2019-01-01 12:00:00</timestamp>
  <raw_file filename="{raw_name}"/>
  <scan_parameters mode="acquire">
    <scan_resolution_x>{nx}</scan_resolution_x>
    <scan_resolution_y>{ny}</scan_resolution_y>
  </scan_parameters>
  <comment>LiberTEM synthetic EMPAD data</comment>
</root>
"""
    out.write_bytes("EMPAD/acquisition_12_pretty.xml", [xml.encode("utf-8")])
    data = np.zeros((ny * nx,) + EMPAD_RAW_SIG, dtype="<f4")
    for i in range(ny * nx):
        data[i, :EMPAD_SIG[0]] = _ramp(EMPAD_SIG, i, 97) * 0.5
    out.write_bytes("EMPAD/" + raw_name, [data.tobytes()])


# ---------------------------------------------------------------------------
# TVIPS (LiberTEM's own reader, tvips.py)
# ---------------------------------------------------------------------------
# NAME_000.tvips starts with a 256-byte little-endian series header:
#   i4 ISize = 256, i4 IVersion = 2, i4 IXDim, i4 IYDim, i4 IBPP (8 or 16),
#   i4 IXOff, i4 IYOff, i4 IXBin, i4 IYBin, i4 IPixelSize (nm), i4 IHT (kV),
#   i4 IMagTotal, i4 IImgHeaderBytes (v2: size of each frame header), then 204
#   filler bytes.  Then per frame: IImgHeaderBytes of frame header, then
#   IYDim*IXDim pixels.  The v2 frame header LiberTEM knows is 108 bytes
#   (27 x 4-byte fields: u4 ICounter, u4 ITime, u4 IMS, ..., f4 Scan_x at
#   byte 68, f4 Scan_y at byte 72, ...), so IImgHeaderBytes = 108.
# LiberTEM guesses sync_offset from Scan_y/Scan_x: a (0,0) frame followed by
# (0,1).  Here Scan_x = 0..9 and Scan_y = 0 (a 10-point line scan), giving
# sync_offset 0 and a detected nav shape of (10,), as the test expects.

_TVIPS_FRAME_HEADER = np.dtype([
    ("ICounter", "<u4"), ("ITime", "<u4"), ("IMS", "<u4"), ("LUT_Index", "<u4"),
    ("Faraday", "<f4"), ("TEM_Mag", "<u4"), ("TEM_Mag_mode", "<u4"),
    ("TEM_Stage_x", "<f4"), ("TEM_Stage_y", "<f4"), ("TEM_Stage_z", "<f4"),
    ("TEM_Stage_alpha", "<f4"), ("TEM_Stage_beta", "<f4"), ("Index_of_rotator", "<u4"),
    ("DENS_T_measure", "<f4"), ("DENS_T_setpoint", "<f4"), ("DENS_Power", "<f4"),
    ("TEM_Obj_current", "<f4"), ("Scan_x", "<f4"), ("Scan_y", "<f4"),
    ("DENS", "<f4", (8,)),
])
assert _TVIPS_FRAME_HEADER.itemsize == 108


def gen_tvips(out):
    h, w = TVIPS_SIG
    n = TVIPS_FRAMES
    series = bytearray(256)
    struct.pack_into("<13i", series, 0, 256, 2, w, h, 8, 0, 0, 1, 1, 10, 200, 1000,
                     _TVIPS_FRAME_HEADER.itemsize)
    series[52:256] = (b"TVIPS " * 35)[:204]
    rec = np.zeros(n, dtype=[("hdr", _TVIPS_FRAME_HEADER), ("data", "u1", (h, w))])
    rec["hdr"]["ICounter"] = np.arange(n)
    rec["hdr"]["ITime"] = 1592892157
    rec["hdr"]["IMS"] = np.arange(n) * 10
    rec["hdr"]["TEM_Mag_mode"] = 2
    rec["hdr"]["Index_of_rotator"] = np.arange(n) + 1
    rec["hdr"]["Scan_x"] = np.arange(n)
    rec["hdr"]["Scan_y"] = 0
    for i in range(n):
        rec["data"][i] = _ramp(TVIPS_SIG, i, 256)
    out.write_bytes("TVIPS/rec_20200623_080237_000.tvips", [bytes(series), rec.tobytes()])


GENERATORS = [gen_mrc, gen_dm, gen_k2is, gen_frms6, gen_mib, gen_blo, gen_empad, gen_tvips]


# ---------------------------------------------------------------------------

def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: generate.py OUTDIR", file=sys.stderr)
        return 2
    outdir = os.path.abspath(argv[1])
    t0 = time.monotonic()
    os.makedirs(outdir, exist_ok=True)
    stamp = os.path.join(outdir, ".complete")
    if os.path.exists(stamp):
        os.remove(stamp)
    stage = os.path.join(outdir, ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)

    out = Out(stage)
    for gen in GENERATORS:
        gen(out)

    # publish: move each top-level entry into place, then write the stamp
    for name in sorted(os.listdir(stage)):
        dest = os.path.join(outdir, name)
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        elif os.path.lexists(dest):
            os.remove(dest)
        os.rename(os.path.join(stage, name), dest)
    os.rmdir(stage)
    total = sum(size for _, size in out.files)
    info = {"generator_version": GENERATOR_VERSION, "libertem": LIBERTEM_VERSION,
            "total_bytes": total, "files": dict(out.files)}
    with open(stamp + ".tmp", "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
        f.write("\n")
    os.rename(stamp + ".tmp", stamp)
    print(f"done: {len(out.files)} files, {total} bytes ({total / 2**20:.1f} MiB) "
          f"in {time.monotonic() - t0:.1f} s -> {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
