// dcmjs ships no type declarations. It is typed as `any` here on purpose and only touched inside
// adapters/codecs that wrap it with our own typed functions (readDicom, naturalize, encodeSr), so
// its looseness stops at those boundaries.
declare module 'dcmjs' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const dcmjs: any;
  export default dcmjs;
}
