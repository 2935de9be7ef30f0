/** A contact as the domain knows it, and how a row becomes one (stores and joins share it). */
export interface Contact {
  id: string;
  workspaceId: string;
  telegramUserId: number | null;
  username: string | null;
  name: string | null;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phone: string | null;
  tags: string[];
  customFields: Record<string, unknown>;
  blocked: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** The columns a contact is written with (all but id, workspace and timestamps). */
export type ContactFields = Omit<Contact, 'id' | 'workspaceId' | 'createdAt' | 'updatedAt'>;

export const CONTACT_COLUMNS = [
  'id', 'workspace_id', 'telegram_user_id', 'username', 'name', 'first_name', 'last_name',
  'email', 'phone', 'tags', 'custom_fields', 'blocked', 'created_at', 'updated_at',
] as const;

export function toContact(r: any): Contact {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    telegramUserId: r.telegram_user_id,
    username: r.username,
    name: r.name,
    firstName: r.first_name,
    lastName: r.last_name,
    email: r.email,
    phone: r.phone,
    tags: r.tags,
    customFields: r.custom_fields,
    blocked: r.blocked,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
