/**
 * Bounds on what a DICOM file may make us allocate or walk, checked before the allocation or the
 * walk (config: `limits.dicom`). The defaults take any radiograph, CT slice or mammogram (the
 * largest, ~4000 × 5600, is a third of maxPixelsPerFrame) and refuse what only a crafted file
 * declares; decoding the largest frame they allow costs a few hundred MB at most, in a worker.
 */
export interface DicomLimits {
  /** Sequences nested deeper than this are refused (DICOM_TOO_DEEP). Real data sets nest a handful. */
  maxDepth: number;
  /** A Part 10 file (or WADO-RS part) larger than this is refused (DICOM_TOO_LARGE). */
  maxFileBytes: number;
  /** A Deflated data set may inflate to this many bytes at most. */
  maxInflatedBytes: number;
  /** Rows × Columns of one frame. */
  maxPixelsPerFrame: number;
  maxFrames: number;
  /** One decoded frame: pixels × samples × bytes per sample. */
  maxDecodedFrameBytes: number;
}

export const DEFAULT_DICOM_LIMITS: Readonly<DicomLimits> = Object.freeze({
  maxDepth: 64,
  maxFileBytes: 512 * 1024 * 1024,
  maxInflatedBytes: 256 * 1024 * 1024,
  maxPixelsPerFrame: 8192 * 8192,
  maxFrames: 4096,
  maxDecodedFrameBytes: 256 * 1024 * 1024,
});
