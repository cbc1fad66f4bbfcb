/** `total` split into `parts` whole shares as even as they can be, the larger ones first (10 in 4: 3, 3, 2, 2). */
export function shareOut(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}
