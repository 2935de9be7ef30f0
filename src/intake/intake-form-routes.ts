import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import { intakeFormBody, intakeFormSchema } from './intake-form-schemas.js';
import { formOrThrow, presentIntakeForm, type IntakeFormService } from './intake-form-service.js';

export function intakeFormRoutes(intakeForms: IntakeFormService): RouteDef[] {
  const tag = 'intake-form';
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  return [
    defineRoute({
      method: 'get', path: '/v1/intake-form', tag, auth: 'key', scope: 'manage:settings',
      summary: 'The questions the bot asks a customer before opening a ticket (the default form until one is set)',
      responses: { 200: { description: 'The intake form', schema: intakeFormSchema } },
      async handler(ctx) {
        ctx.body = presentIntakeForm(await intakeForms.get(ctx.state.db, ws(ctx)));
      },
    }),
    defineRoute({
      method: 'put', path: '/v1/intake-form', tag, auth: 'key', scope: 'manage:settings',
      summary: 'Replace the intake form; forms already in progress finish with the questions they started with',
      body: intakeFormBody,
      // The rules a schema cannot state, refused before the request costs anything.
      validate: ({ body }) => { formOrThrow(body); },
      responses: { 200: { description: 'The intake form', schema: intakeFormSchema } },
      async handler(ctx, { body }) {
        ctx.body = presentIntakeForm(await intakeForms.replace(ctx.state.db, ws(ctx), body));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/intake-form', tag, auth: 'key', scope: 'manage:settings',
      summary: 'Go back to the default intake form',
      responses: { 204: { description: 'The default form applies again' } },
      async handler(ctx) {
        await intakeForms.reset(ctx.state.db, ws(ctx));
        ctx.status = 204;
      },
    }),
  ];
}
