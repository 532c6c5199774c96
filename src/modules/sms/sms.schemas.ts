import { Type } from '@sinclair/typebox';

export const DedicatedNumber = Type.Object({
  number: Type.String({ description: 'The number, international digits' }),
  countryIsoCode: Type.String({ description: 'ISO 3166-1 alpha-3' }),
});

export const ShortcodeKeyword = Type.Object({
  number: Type.String(),
  keyword: Type.String({ description: 'The keyword (empty for a whole short code)' }),
  countryIsoCode: Type.String({ description: 'ISO 3166-1 alpha-3' }),
});
