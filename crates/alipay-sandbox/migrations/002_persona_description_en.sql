-- Persona descriptions in two languages: `description` keeps the Chinese text, `description_en`
-- the English. Descriptions written before as "English / 中文" are split at the " / "; any other
-- description is the same text in both.
ALTER TABLE buyers ADD COLUMN description_en TEXT NOT NULL DEFAULT '';
UPDATE buyers SET
    description_en = trim(substr(description, 1, instr(description, ' / ') - 1)),
    description = trim(substr(description, instr(description, ' / ') + 3))
WHERE instr(description, ' / ') > 0;
UPDATE buyers SET description_en = description WHERE description_en = '';
