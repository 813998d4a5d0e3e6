// range-parser 1.3 (express's Range header parser) ships no types.
declare module 'range-parser' {
  interface Range {
    start: number;
    end: number;
  }
  interface Ranges extends Array<Range> {
    type: string;
  }
  function parseRange(size: number, header: string, options?: { combine?: boolean }): Ranges | -1 | -2;
  export default parseRange;
}
