/**
 * The two shapes of a model folder's manifest.json (models/MANIFEST.md): schema 1, the reference
 * model's (one grey input, input_ids + attention_mask, probabilities + saliency), and schema 2,
 * which describes any image classifier with or without text. manifest.ts turns either into one
 * internal shape; nothing else reads these schemas.
 */
import { z } from 'zod';

const sectionBase = { template: z.string().min(1), max: z.number().int().positive().optional() };

export const textSectionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('orderReason'), resourceType: z.literal('ServiceRequest'), ...sectionBase }),
  z.object({
    kind: z.literal('priorReports'),
    resourceType: z.literal('DiagnosticReport'),
    order: z.enum(['newest-first', 'oldest-first']).default('newest-first'),
    ...sectionBase,
  }),
  z.object({
    kind: z.literal('observations'),
    resourceType: z.literal('Observation'),
    latestPerCode: z.boolean().default(true),
    codes: z.array(z.object({ system: z.string().min(1), code: z.string().min(1), label: z.string().min(1) })).min(1),
    ...sectionBase,
  }),
]);

const identity = {
  id: z.string().min(1),
  version: z.string().min(1),
  deviceUid: z.string().regex(/^[0-2](\.(0|[1-9][0-9]*))+$/, 'must be a DICOM UID').max(64),
  name: z.string().min(1),
  manufacturer: z.string().min(1),
  intendedUse: z.string().min(1),
  notForClinicalUse: z.string().min(1),
  onnx: z.object({ file: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'), opset: z.number().int().optional() }),
  ablations: z.record(z.string(), z.string()).optional(),
  findings: z
    .array(z.object({ code: z.string().min(1), display: z.string().min(1), threshold: z.number().min(0).max(1) }))
    .min(1)
    .refine((f) => new Set(f.map((x) => x.code)).size === f.length, 'each finding code at most once'),
};

const percentiles = z
  .tuple([z.number().min(0).max(100), z.number().min(0).max(100)])
  .refine(([lo, hi]) => lo <= hi, 'must be [lo, hi] with lo <= hi');
const photometric = z.record(z.string(), z.enum(['invert', 'keep']));

// ---------------------------------------------------------------------------------------------
// Schema 1

const tensorSpec = z.object({
  name: z.string().min(1),
  dtype: z.enum(['float32', 'int64']).optional(),
  shape: z.array(z.union([z.string(), z.number().int().positive()])),
});

const textV1 = z.object({
  tokenizer: z.string().min(1),
  maxLength: z.number().int().min(3),
  joiner: z.string(),
  empty: z.string().min(1),
  sections: z.array(textSectionSchema).min(1),
});

export const manifestV1Schema = z.object({
  schemaVersion: z.literal(1),
  ...identity,
  inputs: z.object({ image: tensorSpec, inputIds: tensorSpec, attentionMask: tensorSpec }),
  outputs: z.object({ probabilities: tensorSpec, saliency: tensorSpec }),
  image: z.object({
    size: z.number().int().positive(),
    modalityLut: z.boolean(),
    window: z.object({ source: z.enum(['dataset-then-percentile', 'dataset', 'percentile']), percentiles }),
    photometric,
    resize: z.literal('bilinear-half-pixel'),
    normalize: z.object({ mean: z.number(), std: z.number().positive() }),
  }),
  text: textV1,
  saliency: z.object({
    threshold: z.number().min(0).max(1),
    space: z.literal('model-input'),
    minProbability: z.number().min(0).max(1).optional(),
  }),
});

// ---------------------------------------------------------------------------------------------
// Schema 2 (strict objects: a misspelt key is named instead of silently defaulted)

const perChannel = (item: z.ZodNumber) => z.union([item, z.array(item).min(1)]);

const windowV2 = z
  .object({
    source: z.enum(['dataset-then-percentile', 'dataset', 'percentile', 'fixed']),
    percentiles: percentiles.default([0.5, 99.5]),
    center: z.number().optional(),
    width: z.number().positive().optional(),
  })
  .strict()
  .superRefine((w, ctx) => {
    if (w.source === 'fixed' && (w.center === undefined || w.width === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['center'], message: 'a fixed window needs center and width (in modality units)' });
    }
  });

const imageV2 = z
  .object({
    input: z
      .object({
        name: z.string().min(1),
        dtype: z.enum(['float32', 'float16']).default('float32'),
        layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
        channels: z.union([z.literal(1), z.literal(3)]),
        color: z.enum(['replicate-grey', 'rgb']).default('replicate-grey'),
      })
      .strict(),
    size: z.object({ width: z.number().int().positive().max(8192), height: z.number().int().positive().max(8192) }).strict(),
    modalityLut: z.boolean().default(true),
    window: windowV2,
    photometric: photometric.default({ MONOCHROME1: 'invert', MONOCHROME2: 'keep' }),
    resize: z
      .object({
        mode: z.enum(['stretch', 'keep-aspect-pad', 'center-crop']).default('stretch'),
        interpolation: z.enum(['bilinear', 'area']).default('bilinear'),
        /** keep-aspect-pad: the value of the padding, on the [0, 1] scale of the window's output. */
        pad: z.number().min(0).max(1).default(0),
      })
      .strict()
      .prefault({}),
    range: z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo < hi, 'must be [lo, hi] with lo < hi')
      .default([0, 1]),
    normalize: z.object({ mean: perChannel(z.number()), std: perChannel(z.number().positive()) }).strict(),
  })
  .strict()
  .superRefine((image, ctx) => {
    const channels = image.input.channels;
    for (const key of ['mean', 'std'] as const) {
      const value = image.normalize[key];
      if (Array.isArray(value) && value.length !== channels) {
        ctx.addIssue({ code: 'custom', path: ['normalize', key], message: `has ${value.length} values; image.input.channels is ${channels} (give one per channel, or one number for all)` });
      }
    }
    if (image.input.color === 'rgb' && channels !== 3) ctx.addIssue({ code: 'custom', path: ['input', 'color'], message: 'rgb needs channels 3' });
  });

const textV2 = z
  .object({
    inputs: z.object({ inputIds: z.string().min(1), attentionMask: z.string().min(1), tokenTypeIds: z.string().min(1).optional() }).strict(),
    tokenizer: z.string().min(1),
    maxLength: z.number().int().min(2),
    truncation: z.enum(['left', 'right']).default('right'),
    joiner: z.string(),
    empty: z.string().min(1),
    sections: z.array(textSectionSchema).min(1),
    /** The padding token, when tokenizer.json names none (no `padding.pad_id`, no [PAD] or <pad> among its added tokens). */
    padToken: z.string().min(1).optional(),
  })
  .strict();

const scoresV2 = z
  .object({
    name: z.string().min(1),
    kind: z.enum(['probabilities', 'logits']),
    activation: z.enum(['sigmoid', 'softmax', 'none']).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.kind === 'probabilities' && s.activation !== undefined && s.activation !== 'none') {
      ctx.addIssue({ code: 'custom', path: ['activation'], message: 'probabilities take no activation (none); logits take sigmoid or softmax' });
    }
    if (s.kind === 'logits' && s.activation === 'none') {
      ctx.addIssue({ code: 'custom', path: ['activation'], message: 'thresholds apply to probabilities: logits need sigmoid (independent findings) or softmax (exclusive classes)' });
    }
  });

export const manifestV2Schema = z
  .object({
    schemaVersion: z.literal(2),
    ...identity,
    image: imageV2,
    text: textV2.optional(),
    outputs: z
      .object({
        scores: scoresV2,
        saliency: z
          .object({
            name: z.string().min(1),
            /** Of the map normalised to its maximum: the region is the bounding box of the pixels at or above it. */
            threshold: z.number().min(0).max(1).default(0.5),
            space: z.literal('model-input').default('model-input'),
            minProbability: z.number().min(0).max(1).optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .strict();

export type ManifestV1 = z.infer<typeof manifestV1Schema>;
export type ManifestV2 = z.infer<typeof manifestV2Schema>;
export type TextSection = z.infer<typeof textSectionSchema>;
