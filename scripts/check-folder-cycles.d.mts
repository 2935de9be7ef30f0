// Types for scripts/check-folder-cycles.mjs (used by test/unit/boundaries.test.ts).
import type { ICruiseResult } from 'dependency-cruiser';

export function cruiseBoundaries(paths: string[], options?: { baseDir?: string }): Promise<ICruiseResult>;
export function folderOf(source: string): string | null;
export function folderCycles(modules: ICruiseResult['modules']): { folders: string[]; imports: string[] }[];
