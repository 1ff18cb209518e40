/**
 * Bounds on what a DICOM file may make us allocate or walk, checked before the allocation or the
 * walk (config: `limits.dicom`). The defaults take any real radiograph, CT or mammogram, and
 * refuse what only a crafted file declares.
 */
export interface DicomLimits {
  /** Sequences nested deeper than this are refused (DICOM_TOO_DEEP). Real data sets nest a handful. */
  maxDepth: number;
  /** A Part 10 file (or WADO-RS part) larger than this is refused (DICOM_TOO_LARGE). */
  maxFileBytes: number;
  /** A Deflated data set may inflate to this many bytes at most. */
  maxInflatedBytes: number;
  /** Rows × Columns. 16384² covers the largest mammography and pathology overviews we read. */
  maxPixelsPerFrame: number;
  maxFrames: number;
  /** One decoded frame: pixels × samples × bytes per sample. */
  maxDecodedFrameBytes: number;
}

export const DEFAULT_DICOM_LIMITS: Readonly<DicomLimits> = Object.freeze({
  maxDepth: 64,
  maxFileBytes: 1024 * 1024 * 1024,
  maxInflatedBytes: 512 * 1024 * 1024,
  maxPixelsPerFrame: 16384 * 16384,
  maxFrames: 4096,
  maxDecodedFrameBytes: 1024 * 1024 * 1024,
});
