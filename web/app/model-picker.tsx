"use client";

import type { ModelList } from "../lib/api";

/** A select over the model list, or a text field when there is no list; says where the list comes from. */
export function ModelPicker({
  list,
  value,
  onChange,
}: {
  list: ModelList;
  value: string;
  onChange: (model: string) => void;
}) {
  return (
    <div className="picker">
      <label>
        Model{" "}
        {list.models.length > 0 ? (
          <select value={value} onChange={(e) => onChange(e.target.value)} data-testid="model">
            {list.models.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        ) : (
          <input
            value={value}
            onChange={(e) => onChange(e.target.value.trim())}
            placeholder="model id"
            data-testid="model"
          />
        )}
      </label>
      {list.notice ? (
        <p className="notice" data-testid="models-notice">
          {list.notice}
        </p>
      ) : null}
    </div>
  );
}
