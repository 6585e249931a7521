/**
 * Compiles a TypeBox schema into a checker that returns null for a valid value or one
 * sentence naming the first bad field ("/type must be one of dr, migration"), which the
 * server prefixes with "Invalid request body: ".
 */
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ValueErrorType, type ValueError } from "@sinclair/typebox/errors";

export type BodyChecker = (value: unknown) => string | null;

function constValues(schema: TSchema): unknown[] | undefined {
  const anyOf = (schema as { anyOf?: unknown }).anyOf;
  if (!Array.isArray(anyOf)) return undefined;
  const values: unknown[] = [];
  for (const member of anyOf as { const?: unknown }[]) {
    if (!("const" in member)) return undefined;
    values.push(member.const);
  }
  return values;
}

function describe(error: ValueError): string {
  const schema = error.schema as TSchema & Record<string, unknown>;
  if (error.value === undefined) return "is required";
  const values = constValues(schema);
  if (values !== undefined) return `must be one of ${values.map(String).join(", ")}`;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return "is required";
    case ValueErrorType.ObjectAdditionalProperties:
      return "is not a known field";
    case ValueErrorType.String:
      return "must be a string";
    case ValueErrorType.Number:
      return "must be a number";
    case ValueErrorType.Integer:
      return "must be an integer";
    case ValueErrorType.Boolean:
      return "must be a boolean";
    case ValueErrorType.Array:
      return "must be an array";
    case ValueErrorType.Object:
      return "must be an object";
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema["const"])}`;
    case ValueErrorType.StringMinLength:
      return `must be at least ${String(schema["minLength"])} characters long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(schema["maxLength"])} characters long`;
    case ValueErrorType.StringPattern:
      return `must match ${String(schema["pattern"])}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be at least ${String(schema["minimum"])}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be at most ${String(schema["maximum"])}`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${String(schema["minItems"])} item(s)`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${String(schema["maxItems"])} item(s)`;
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
}

export function compileBodyChecker(schema: TSchema): BodyChecker {
  const compiled = TypeCompiler.Compile(schema);
  return (value) => {
    if (compiled.Check(value)) return null;
    const first = compiled.Errors(value).First();
    if (first === undefined) return "/ is invalid";
    return `${first.path === "" ? "/" : first.path} ${describe(first)}`;
  };
}
