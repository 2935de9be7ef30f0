/**
 * The intake form's pure logic (src/intake/intake-form.ts): the default form, every rule of
 * checkForm with good and bad input, checkAnswer for every field type (boundary lengths,
 * email and phone formats, skip on required vs optional, media where only text is taken,
 * button indexes out of range), questionText and ticketFromAnswers.
 */
import assert from 'node:assert/strict';
import {
  checkAnswer, checkForm, DEFAULT_INTAKE_FORM, questionText, ticketFromAnswers,
  type AnswerCheck, type FormField, type IntakeForm, type StoredAnswer,
} from '../../src/intake/intake-form.js';

const clone = <T>(v: T): T => structuredClone(v);
const subject = (over: Partial<FormField> = {}): FormField => ({ key: 'subject', type: 'text', question: 'Subject?', required: true, max_length: 120, ...over });
const form = (...more: FormField[]) => ({ fields: [subject(), ...more] });

function bad(body: unknown, field: string, error?: RegExp): void {
  const r = checkForm(body);
  assert.equal(r.ok, false, `refused: ${JSON.stringify(body)}`);
  if (r.ok) return;
  const hit = r.details.find((d) => d.field === field);
  assert.ok(hit, `details name ${field}: ${JSON.stringify(r.details)}`);
  if (error) assert.match(hit.error, error);
}
function good(body: unknown): IntakeForm {
  const r = checkForm(body);
  assert.ok(r.ok, `accepted: ${JSON.stringify(r)}`);
  return r.form;
}
function refused(r: AnswerCheck, match?: RegExp): string {
  assert.equal(r.ok, false, JSON.stringify(r));
  if (r.ok) throw new Error('unreachable');
  assert.ok(r.problem.length > 0 && r.problem.length <= 160, r.problem);
  // One short sentence: a capital letter, one final stop.
  assert.match(r.problem, /^[A-Z][^]*\.$/);
  assert.equal(r.problem.replace(/e\.g\.|\.\w/g, '').split(/[.!?](\s|$)/).filter((s) => s && s.trim()).length, 1, r.problem);
  if (match) assert.match(r.problem, match);
  return r.problem;
}
function accepted(r: AnswerCheck): StoredAnswer {
  assert.equal(r.ok, true, JSON.stringify(r));
  if (!r.ok) throw new Error('unreachable');
  return r.value;
}

describe('intake form (pure logic)', () => {
  describe('the default form', () => {
    it('asks category (buttons), subject (≤ 120), description (text or media) and an optional email, in that order', () => {
      const f = DEFAULT_INTAKE_FORM.fields;
      assert.deepEqual(f.map((x) => [x.key, x.type, x.required]), [
        ['category', 'choice', true], ['subject', 'text', true], ['description', 'text_or_media', true], ['email', 'email', false],
      ]);
      assert.equal(f[1]!.max_length, 120);
      const byValue = Object.fromEntries(f[0]!.options!.map((o) => [o.value, o.priority]));
      assert.equal(byValue.billing, 'normal');
      assert.equal(byValue.technical, 'high');
      assert.equal(byValue.other, 'low');
      for (const o of f[0]!.options!) assert.ok(o.label.length >= 1 && o.label.length <= 40);
    });

    it('passes its own checks unchanged', () => {
      assert.deepEqual(good(clone(DEFAULT_INTAKE_FORM)), DEFAULT_INTAKE_FORM);
    });

    it('cannot be changed by accident (it is shared)', () => {
      assert.throws(() => { (DEFAULT_INTAKE_FORM.fields as FormField[]).push(subject()); });
      assert.throws(() => { (DEFAULT_INTAKE_FORM.fields[1] as FormField).max_length = 5; });
    });
  });

  describe('checkForm', () => {
    it('accepts the smallest form: a required subject', () => {
      assert.deepEqual(good({ fields: [subject()] }).fields.map((f) => f.key), ['subject']);
    });

    it('accepts a form using every type and option', () => {
      const f = good(form(
        { key: 'category', type: 'choice', question: 'Area?', required: true, options: [{ value: 'a', label: 'A', priority: 'urgent' }, { value: 'b', label: 'B' }] },
        { key: 'description', type: 'text_or_media', question: 'Details?', required: false, min_length: 0, max_length: 4000 },
        { key: 'order_number', type: 'text', question: 'Order?', required: false, min_length: 5, max_length: 5 },
        { key: 'mail', type: 'email', question: 'Email?', required: false },
        { key: 'tel', type: 'phone', question: 'Phone?', required: false },
      ));
      assert.equal(f.fields.length, 6);
    });

    it('returns a copy, with the subject\'s max_length made explicit (200) when absent', () => {
      const body = { fields: [{ key: 'subject', type: 'text', question: 'Subject?', required: true }] };
      const f = good(body);
      assert.equal(f.fields[0]!.max_length, 200);
      assert.equal((body.fields[0] as FormField).max_length, undefined);
    });

    it('refuses a body that is not an object with fields', () => {
      bad(null, 'body');
      bad([], 'body');
      bad({}, 'fields', /required/);
      bad({ fields: 'x' }, 'fields');
    });

    it('needs 1-20 fields', () => {
      bad({ fields: [] }, 'fields');
      const twenty = [subject(), ...Array.from({ length: 19 }, (_, i) => ({ key: `f${i}`, type: 'text', question: 'Q?', required: false }))];
      good({ fields: twenty });
      bad({ fields: [...twenty, { key: 'f99', type: 'text', question: 'Q?', required: false }] }, 'fields');
    });

    it('refuses unknown properties at every level', () => {
      bad({ ...form(), extra: 1 }, 'extra', /not a known field/);
      bad({ fields: [{ ...subject(), hint: 'x' }] }, 'fields[0].hint', /not a known field/);
      bad(form({ key: 'c', type: 'choice', question: 'Q?', required: true, options: [{ value: 'a', label: 'A', emoji: '!' } as any] }), 'fields[1].options[0].emoji');
    });

    it('needs key, type, question and required on each field', () => {
      for (const prop of ['key', 'type', 'question', 'required'] as const) {
        const f: any = { key: 'x', type: 'text', question: 'Q?', required: false };
        delete f[prop];
        bad(form(f), `fields[1].${prop}`, /required/);
      }
    });

    it('takes keys of 1-40 lower-case letters, digits and underscores, starting with a letter', () => {
      good(form({ key: 'a', type: 'text', question: 'Q?', required: false }));
      good(form({ key: `a${'b'.repeat(39)}`, type: 'text', question: 'Q?', required: false }));
      for (const key of ['', `a${'b'.repeat(40)}`, 'Order', '1st', '_x', 'a-b', 'a b', 'ä']) {
        bad(form({ key, type: 'text', question: 'Q?', required: false }), 'fields[1].key');
      }
    });

    it('refuses duplicate keys, naming the later field', () => {
      bad(form({ key: 'x', type: 'text', question: 'Q?', required: false }, { key: 'x', type: 'email', question: 'Q?', required: false }), 'fields[2].key', /unique.*fields\[1\]/);
      bad({ fields: [subject(), subject()] }, 'fields[1].key', /unique/);
    });

    it('refuses an unknown type', () => {
      bad(form({ key: 'x', type: 'date' as any, question: 'Q?', required: false }), 'fields[1].type');
    });

    it('takes questions of 1-1000 characters, not blank', () => {
      good(form({ key: 'x', type: 'text', question: 'Q'.repeat(1000), required: false }));
      bad(form({ key: 'x', type: 'text', question: 'Q'.repeat(1001), required: false }), 'fields[1].question');
      bad(form({ key: 'x', type: 'text', question: '', required: false }), 'fields[1].question');
      bad(form({ key: 'x', type: 'text', question: '   ', required: false }), 'fields[1].question');
    });

    it('takes required as a boolean only', () => {
      bad(form({ key: 'x', type: 'text', question: 'Q?', required: 'yes' as any }), 'fields[1].required');
    });

    it('needs exactly one field keyed subject: text, required, max_length ≤ 200', () => {
      bad({ fields: [{ key: 'topic', type: 'text', question: 'Q?', required: true }] }, 'fields', /subject/);
      bad({ fields: [subject({ type: 'text_or_media' })] }, 'fields[0].type', /text/);
      bad({ fields: [subject({ type: 'choice', options: [{ value: 'a', label: 'A' }], max_length: undefined })] }, 'fields[0].type');
      bad({ fields: [subject({ required: false })] }, 'fields[0].required', /true/);
      good({ fields: [subject({ max_length: 200 })] });
      bad({ fields: [subject({ max_length: 201 })] }, 'fields[0].max_length', /200/);
    });

    it('the subject may come anywhere in the form', () => {
      good({ fields: [{ key: 'email', type: 'email', question: 'Email?', required: false }, subject()] });
    });

    it('a field keyed category must be a choice', () => {
      good(form({ key: 'category', type: 'choice', question: 'Q?', required: true, options: [{ value: 'a', label: 'A' }] }));
      bad(form({ key: 'category', type: 'text', question: 'Q?', required: true }), 'fields[1].type', /choice/);
    });

    it('a field keyed description must be text or text_or_media', () => {
      good(form({ key: 'description', type: 'text', question: 'Q?', required: true }));
      bad(form({ key: 'description', type: 'email', question: 'Q?', required: true }), 'fields[1].type');
    });

    it('options: required on a choice field, refused on every other type', () => {
      bad(form({ key: 'c', type: 'choice', question: 'Q?', required: true }), 'fields[1].options', /required/);
      for (const type of ['text', 'text_or_media', 'email', 'phone'] as const) {
        bad(form({ key: 'x', type, question: 'Q?', required: false, options: [{ value: 'a', label: 'A' }] }), 'fields[1].options', /only choice/);
      }
    });

    it('options: 1-12, labels 1-40 characters, values 1-100 characters and unique, priorities known', () => {
      const choice = (options: unknown[]) => form({ key: 'c', type: 'choice', question: 'Q?', required: true, options: options as any });
      const opt = (i: number) => ({ value: `v${i}`, label: `L${i}` });
      good(choice(Array.from({ length: 12 }, (_, i) => opt(i))));
      bad(choice(Array.from({ length: 13 }, (_, i) => opt(i))), 'fields[1].options');
      bad(choice([]), 'fields[1].options');
      good(choice([{ value: 'a', label: 'L'.repeat(40) }]));
      bad(choice([{ value: 'a', label: 'L'.repeat(41) }]), 'fields[1].options[0].label');
      bad(choice([{ value: 'a', label: '' }]), 'fields[1].options[0].label');
      bad(choice([{ value: 'a', label: ' ' }]), 'fields[1].options[0].label');
      bad(choice([{ value: 'a' }]), 'fields[1].options[0].label', /required/);
      good(choice([{ value: 'v'.repeat(100), label: 'A' }]));
      bad(choice([{ value: 'v'.repeat(101), label: 'A' }]), 'fields[1].options[0].value');
      bad(choice([{ value: '', label: 'A' }]), 'fields[1].options[0].value');
      bad(choice([opt(1), opt(2), { value: 'v1', label: 'Again' }]), 'fields[1].options[2].value', /unique/);
      good(choice([{ value: 'a', label: 'A', priority: 'low' }, { value: 'b', label: 'B', priority: 'urgent' }]));
      bad(choice([{ value: 'a', label: 'A', priority: 'critical' }]), 'fields[1].options[0].priority');
    });

    it('lengths: integers 0-4000 (max ≥ 1), on text and text_or_media only, min ≤ max', () => {
      const text = (over: Partial<FormField>) => form({ key: 'x', type: 'text', question: 'Q?', required: false, ...over });
      good(text({ min_length: 0, max_length: 4000 }));
      good(text({ min_length: 10, max_length: 10 }));
      bad(text({ max_length: 4001 }), 'fields[1].max_length');
      bad(text({ max_length: 0 }), 'fields[1].max_length');
      bad(text({ min_length: -1 }), 'fields[1].min_length');
      bad(text({ min_length: 1.5 }), 'fields[1].min_length');
      bad(text({ min_length: 11, max_length: 10 }), 'fields[1].min_length', /max_length/);
      bad(form({ key: 'x', type: 'text_or_media', question: 'Q?', required: false, min_length: 30, max_length: 20 }), 'fields[1].min_length');
      for (const type of ['choice', 'email', 'phone'] as const) {
        const extra = type === 'choice' ? { options: [{ value: 'a', label: 'A' }] } : {};
        bad(form({ key: 'x', type, question: 'Q?', required: false, max_length: 10, ...extra }), 'fields[1].max_length', /text/);
        bad(form({ key: 'x', type, question: 'Q?', required: false, min_length: 1, ...extra }), 'fields[1].min_length', /text/);
      }
    });

    it('at most one email and one phone field', () => {
      good(form({ key: 'e', type: 'email', question: 'Q?', required: false }, { key: 'p', type: 'phone', question: 'Q?', required: false }));
      bad(form({ key: 'e', type: 'email', question: 'Q?', required: false }, { key: 'e2', type: 'email', question: 'Q?', required: false }), 'fields[2].type', /one email/);
      bad(form({ key: 'p', type: 'phone', question: 'Q?', required: false }, { key: 'p2', type: 'phone', question: 'Q?', required: false }), 'fields[2].type', /one phone/);
    });

    it('reports every problem at once', () => {
      const r = checkForm({ fields: [subject({ required: false }), { key: 'category', type: 'text', question: 'Q?', required: true }, { key: 'x', type: 'choice', question: 'Q?', required: true }] });
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.deepEqual(r.details.map((d) => d.field).sort(), ['fields[0].required', 'fields[1].type', 'fields[2].options']);
    });
  });

  describe('checkAnswer', () => {
    const text = (t: string) => ({ kind: 'text', text: t }) as const;
    const media = (caption: string | null = null) => ({ kind: 'media', caption, attachment: { type: 'photo', file_id: 'F1' } }) as const;
    const skip = { kind: 'skip' } as const;
    const press = (index: number) => ({ kind: 'choice', index }) as const;
    const [category, subj, description, email] = DEFAULT_INTAKE_FORM.fields as [FormField, FormField, FormField, FormField];
    const phone: FormField = { key: 'phone', type: 'phone', question: 'Phone?', required: false };
    const bounded: FormField = { key: 'order_number', type: 'text', question: 'Order?', required: true, min_length: 5, max_length: 8 };

    describe('choice', () => {
      it('a button press stores the option\'s value', () => {
        assert.equal(accepted(checkAnswer(category, press(0))), 'billing');
        assert.equal(accepted(checkAnswer(category, press(3))), 'other');
      });
      it('an index out of range or not a whole number is refused', () => {
        for (const i of [-1, 4, 99, 1.5, NaN]) refused(checkAnswer(category, press(i)), /buttons/);
      });
      it('typed text (even an option\'s label) or media asks for a button', () => {
        assert.equal(refused(checkAnswer(category, text('Billing'))), 'Please choose one of the buttons.');
        refused(checkAnswer(category, media('billing')), /buttons/);
      });
      it('skip: refused when required, null when optional', () => {
        refused(checkAnswer(category, skip), /skipped/);
        assert.equal(accepted(checkAnswer({ ...category, required: false }, skip)), null);
      });
    });

    describe('text', () => {
      it('stores the text trimmed', () => {
        assert.equal(accepted(checkAnswer(subj, text('  Cannot log in \n'))), 'Cannot log in');
      });
      it('max_length is inclusive, counted in characters (not UTF-16 units), after trimming', () => {
        assert.equal(accepted(checkAnswer(subj, text('s'.repeat(120)))), 's'.repeat(120));
        assert.equal(accepted(checkAnswer(subj, text(`  ${'s'.repeat(120)}  `))), 's'.repeat(120));
        assert.equal(accepted(checkAnswer(subj, text('😀'.repeat(120)))), '😀'.repeat(120));
        assert.equal(refused(checkAnswer(subj, text('s'.repeat(143)))), 'The subject can be at most 120 characters (yours has 143).');
        refused(checkAnswer(subj, text('s'.repeat(121))), /at most 120 characters \(yours has 121\)/);
      });
      it('min_length is inclusive; the message names the field from its key', () => {
        assert.equal(accepted(checkAnswer(bounded, text('12345'))), '12345');
        assert.equal(accepted(checkAnswer(bounded, text('12345678'))), '12345678');
        assert.equal(refused(checkAnswer(bounded, text('1234'))), 'The order number must be at least 5 characters (yours has 4).');
        refused(checkAnswer(bounded, text('123456789')), /at most 8 characters \(yours has 9\)/);
        refused(checkAnswer({ ...bounded, min_length: 1, max_length: 1 }, text('ab')), /at most 1 character \(/);
      });
      it('without lengths: at least one character, at most 4000', () => {
        const free: FormField = { key: 'notes', type: 'text', question: 'Notes?', required: true };
        accepted(checkAnswer(free, text('x')));
        accepted(checkAnswer(free, text('x'.repeat(4000))));
        refused(checkAnswer(free, text('x'.repeat(4001))), /4000/);
      });
      it('blank text is refused (with a hint to Skip when the question is optional)', () => {
        refused(checkAnswer(subj, text('   ')), /type your answer/);
        refused(checkAnswer({ ...bounded, required: false }, text('')), /Skip/);
      });
      it('media is refused on a text-only question', () => {
        refused(checkAnswer(subj, media('Cannot log in')), /text/);
      });
      it('a stale button press is refused', () => {
        refused(checkAnswer(subj, press(0)), /type/);
      });
      it('skip: refused when required, null when optional', () => {
        refused(checkAnswer(subj, skip), /skipped/);
        assert.equal(accepted(checkAnswer({ ...bounded, required: false }, skip)), null);
      });
    });

    describe('text_or_media', () => {
      it('text is checked and stored like a text answer', () => {
        assert.equal(accepted(checkAnswer(description, text(' It crashes '))), 'It crashes');
        refused(checkAnswer(description, text('x'.repeat(4001))), /at most 4000 characters \(yours has 4001\)/);
        refused(checkAnswer({ ...description, min_length: 10 }, text('short')), /at least 10 characters/);
      });
      it('media is stored with its caption (trimmed; none → null) and the attachment as given', () => {
        assert.deepEqual(accepted(checkAnswer(description, media('  The error  '))), { text: 'The error', attachment: { type: 'photo', file_id: 'F1' } });
        assert.deepEqual(accepted(checkAnswer(description, media(null))), { text: null, attachment: { type: 'photo', file_id: 'F1' } });
        assert.deepEqual(accepted(checkAnswer(description, media('   '))), { text: null, attachment: { type: 'photo', file_id: 'F1' } });
      });
      it('a caption is held to max_length but not to min_length (the media is the answer)', () => {
        const f: FormField = { ...description, min_length: 20, max_length: 10 };
        accepted(checkAnswer(f, media('short')));
        accepted(checkAnswer(f, media('x'.repeat(10))));
        refused(checkAnswer(f, media('x'.repeat(11))), /at most 10 characters \(yours has 11\)/);
      });
      it('the stored answer survives a JSON round trip', () => {
        const v = accepted(checkAnswer(description, media('c')));
        assert.deepEqual(JSON.parse(JSON.stringify(v)), v);
      });
      it('a button press is refused; skip only when optional', () => {
        refused(checkAnswer(description, press(0)), /photo or document/);
        refused(checkAnswer(description, skip), /skipped/);
        assert.equal(accepted(checkAnswer({ ...description, required: false }, skip)), null);
      });
    });

    describe('email', () => {
      it('accepts addresses (trimmed)', () => {
        for (const e of ['sarah@example.com', 'sarah.miller+desk@mail.example.co.uk', 'a_b-c@sub-domain.example.org']) {
          assert.equal(accepted(checkAnswer(email, text(` ${e} `))), e);
        }
      });
      it('refuses what is not an address', () => {
        for (const e of ['sarah', 'sarah@', '@example.com', 'sarah@example', 'sarah example@example.com', 'sarah@@example.com', 'sarah@exa mple.com', '']) {
          refused(checkAnswer({ ...email, required: true }, text(e)), /email address/);
        }
      });
      it('refuses an address over 254 characters', () => {
        const long = `${'a'.repeat(60)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.com`;
        assert.ok(long.length > 254);
        refused(checkAnswer(email, text(long)), /email address/);
      });
      it('skip on the optional email stores null; media or a button is refused', () => {
        assert.equal(accepted(checkAnswer(email, skip)), null);
        refused(checkAnswer({ ...email, required: true }, skip), /skipped/);
        refused(checkAnswer(email, media('sarah@example.com')), /email address/);
        refused(checkAnswer(email, press(0)), /email address/);
      });
    });

    describe('phone', () => {
      it('accepts numbers with spaces, dashes, dots and brackets, storing digits (and a leading +)', () => {
        assert.equal(accepted(checkAnswer(phone, text('+49 30 1234567'))), '+49301234567');
        assert.equal(accepted(checkAnswer(phone, text('(030) 123-45.67'))), '030123456' + '7');
        assert.equal(accepted(checkAnswer(phone, text('1234567'))), '1234567');
        assert.equal(accepted(checkAnswer(phone, text('+123456789012345'))), '+123456789012345');
      });
      it('refuses what is not a phone number', () => {
        for (const p of ['123456', '+1234567890123456', 'call me', '+49 30 12345x7', '49+301234567', '']) {
          refused(checkAnswer(phone, text(p)), /phone number/);
        }
      });
      it('skip when optional; refused when required', () => {
        assert.equal(accepted(checkAnswer(phone, skip)), null);
        refused(checkAnswer({ ...phone, required: true }, skip), /skipped/);
        refused(checkAnswer(phone, media(null)), /phone number/);
      });
    });
  });

  describe('questionText', () => {
    it('numbers the question', () => {
      assert.equal(questionText(DEFAULT_INTAKE_FORM.fields[1]!, 2, 4), '(2/4) What is the subject?');
    });
  });

  describe('ticketFromAnswers', () => {
    const photo = { type: 'photo', file_id: 'P1' };
    const doc = { type: 'document', file_id: 'D1', file_name: 'log.txt' };

    it('maps the default form\'s answers', () => {
      const t = ticketFromAnswers(DEFAULT_INTAKE_FORM, { category: 'technical', subject: 'Cannot log in', description: 'It says 500', email: 'sarah@example.com' });
      assert.deepEqual(t, {
        subject: 'Cannot log in', description: 'It says 500', category: 'technical', priority: 'high',
        email: 'sarah@example.com', phone: null, custom_fields: {}, attachments: [],
      });
    });

    it('a media description gives its caption (or \'\') and the attachment; a skipped email is null', () => {
      const t = ticketFromAnswers(DEFAULT_INTAKE_FORM, { category: 'other', subject: 'S', description: { text: 'See photo', attachment: photo }, email: null });
      assert.equal(t.description, 'See photo');
      assert.deepEqual(t.attachments, [photo]);
      assert.equal(t.email, null);
      assert.equal(t.priority, 'low');
      const t2 = ticketFromAnswers(DEFAULT_INTAKE_FORM, { category: 'billing', subject: 'S', description: { text: null, attachment: doc } });
      assert.equal(t2.description, '');
      assert.deepEqual(t2.attachments, [doc]);
    });

    it('no category field or a skipped one → category null; no option priority → normal', () => {
      const f: IntakeForm = { fields: [subject(), { key: 'category', type: 'choice', question: 'Q?', required: false, options: [{ value: 'a', label: 'A' }] }] };
      assert.equal(ticketFromAnswers(f, { subject: 'S', category: null }).category, null);
      assert.equal(ticketFromAnswers(f, { subject: 'S', category: 'a' }).category, 'a');
      assert.equal(ticketFromAnswers(f, { subject: 'S', category: 'a' }).priority, 'normal');
      assert.deepEqual(ticketFromAnswers({ fields: [subject()] }, { subject: 'S' }), {
        subject: 'S', description: '', category: null, priority: 'normal', email: null, phone: null, custom_fields: {}, attachments: [],
      });
    });

    it('priority comes from the first choice field (in form order) whose chosen option sets one', () => {
      const f: IntakeForm = {
        fields: [
          { key: 'plan', type: 'choice', question: 'Plan?', required: false, options: [{ value: 'free', label: 'Free' }, { value: 'pro', label: 'Pro', priority: 'urgent' }] },
          subject(),
          { key: 'category', type: 'choice', question: 'Area?', required: true, options: [{ value: 'bug', label: 'Bug', priority: 'high' }] },
        ],
      };
      assert.equal(ticketFromAnswers(f, { plan: 'pro', subject: 'S', category: 'bug' }).priority, 'urgent');
      assert.equal(ticketFromAnswers(f, { plan: 'free', subject: 'S', category: 'bug' }).priority, 'high');
      assert.equal(ticketFromAnswers(f, { plan: null, subject: 'S', category: 'bug' }).priority, 'high');
      // A custom choice field's value is also a custom field.
      assert.deepEqual(ticketFromAnswers(f, { plan: 'pro', subject: 'S', category: 'bug' }).custom_fields, { plan: 'pro' });
    });

    it('email and phone come from the fields of those types, whatever their keys; every other answered field is a custom field', () => {
      const f: IntakeForm = {
        fields: [
          subject(),
          { key: 'work_mail', type: 'email', question: 'Q?', required: false },
          { key: 'mobile', type: 'phone', question: 'Q?', required: false },
          { key: 'order_number', type: 'text', question: 'Q?', required: false },
          { key: 'screenshot', type: 'text_or_media', question: 'Q?', required: false },
          { key: 'notes', type: 'text_or_media', question: 'Q?', required: false },
          { key: 'skipped', type: 'text', question: 'Q?', required: false },
          { key: 'description', type: 'text_or_media', question: 'Q?', required: true },
        ],
      };
      const t = ticketFromAnswers(f, {
        subject: 'S', work_mail: 'w@example.com', mobile: '+49301234567', order_number: 'A-1',
        screenshot: { text: null, attachment: photo }, notes: { text: 'see log', attachment: doc }, skipped: null,
        description: { text: 'D', attachment: { type: 'video', file_id: 'V1' } },
        not_in_form: 'ignored',
      });
      assert.equal(t.email, 'w@example.com');
      assert.equal(t.phone, '+49301234567');
      assert.deepEqual(t.custom_fields, { order_number: 'A-1', notes: 'see log' });
      assert.deepEqual(t.attachments, [photo, doc, { type: 'video', file_id: 'V1' }]);
      assert.equal(t.description, 'D');
    });

    it('answers missing altogether are treated as skipped', () => {
      const t = ticketFromAnswers(DEFAULT_INTAKE_FORM, { subject: 'S' });
      assert.equal(t.category, null);
      assert.equal(t.description, '');
      assert.equal(t.email, null);
    });
  });
});
