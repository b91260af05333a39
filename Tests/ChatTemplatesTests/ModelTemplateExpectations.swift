// Generated: jinja2 3.1.6 renderings of ModelTemplates with HF's apply_chat_template environment
// (trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=False), raise_exception,
// strftime_now fixed at 2024-09-15 12:00). Do not edit by hand; see ModelTemplateTests.swift.

enum ModelTemplateExpectations {
    static let texts: [String: String] = [
        "smollm2/single":
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "smollm2/training":
            "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nName a French café "
            + "drink.<|im_end|>\n<|im_start|>assistant\nCafé au lait ☕.<|im_end|>\n<|im_start|>user\nTell me a "
            + "joke.<|im_end|>\n<|im_start|>assistant\n Why did the chicken cross the road?\n<|im_end|>\n",
        "smollm2/followUp":
            "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nName a French café "
            + "drink.<|im_end|>\n<|im_start|>assistant\nCafé au lait ☕.<|im_end|>\n<|im_start|>user\nTell me a "
            + "joke.<|im_end|>\n<|im_start|>assistant\n",
        "qwen25/single":
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "qwen25/training":
            "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nName a French café "
            + "drink.<|im_end|>\n<|im_start|>assistant\nCafé au lait ☕.<|im_end|>\n<|im_start|>user\nTell me a "
            + "joke.<|im_end|>\n<|im_start|>assistant\n Why did the chicken cross the road?\n<|im_end|>\n",
        "qwen25/followUp":
            "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nName a French café "
            + "drink.<|im_end|>\n<|im_start|>assistant\nCafé au lait ☕.<|im_end|>\n<|im_start|>user\nTell me a "
            + "joke.<|im_end|>\n<|im_start|>assistant\n",
        "llama31/single":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the "
            + "capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "llama31/training":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 26 Jul 2024\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>"
            + "user<|end_header_id|>\n\nName a French café drink.<|eot_id|><|start_header_id|>"
            + "assistant<|end_header_id|>\n\nCafé au lait ☕.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            + "Tell me a joke.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nWhy did the chicken "
            + "cross the road?<|eot_id|>",
        "llama31/followUp":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 26 Jul 2024\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>"
            + "user<|end_header_id|>\n\nName a French café drink.<|eot_id|><|start_header_id|>"
            + "assistant<|end_header_id|>\n\nCafé au lait ☕.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            + "Tell me a joke.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "llama32/single":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 15 Sep 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is the "
            + "capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "llama32/training":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 15 Sep 2024\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>"
            + "user<|end_header_id|>\n\nName a French café drink.<|eot_id|><|start_header_id|>"
            + "assistant<|end_header_id|>\n\nCafé au lait ☕.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            + "Tell me a joke.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nWhy did the chicken "
            + "cross the road?<|eot_id|>",
        "llama32/followUp":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 15 Sep 2024\n\nYou are a concise assistant.<|eot_id|><|start_header_id|>"
            + "user<|end_header_id|>\n\nName a French café drink.<|eot_id|><|start_header_id|>"
            + "assistant<|end_header_id|>\n\nCafé au lait ☕.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            + "Tell me a joke.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "zephyr/single":
            "<|user|>\nWhat is the capital of France?</s>\n<|assistant|>\n",
        "zephyr/training":
            "<|system|>\nYou are a concise assistant.</s>\n<|user|>\nName a French café drink.</s>\n<|assistant|>\n"
            + "Café au lait ☕.</s>\n<|user|>\nTell me a joke.</s>\n<|assistant|>\n Why did the chicken cross the "
            + "road?\n</s>\n",
        "zephyr/followUp":
            "<|system|>\nYou are a concise assistant.</s>\n<|user|>\nName a French café drink.</s>\n<|assistant|>\n"
            + "Café au lait ☕.</s>\n<|user|>\nTell me a joke.</s>\n<|assistant|>\n",
        "qwen25/tools":
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
            + "You may call one or more functions to assist with the user query.\n\nYou are provided with "
            + "function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", "
            + "\"function\": {\"name\": \"get_weather\", \"description\": \"Current weather in a city.\", "
            + "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, "
            + "\"required\": [\"city\"]}}}\n</tools>\n\nFor each function call, return a json object with "
            + "function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
            + "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\n"
            + "Weather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
            + "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n"
            + "{\"temp_c\": 18}\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
        "llama31/tools":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge "
            + "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
            + "\n\nGiven the following functions, please respond with a JSON for a function call with its proper "
            + "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
            + "\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    "
            + "\"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        "
            + "\"description\": \"Current weather in a city.\",\n        \"parameters\": {\n            \"type\": "
            + "\"object\",\n            \"properties\": {\n                \"city\": {\n                    "
            + "\"type\": \"string\"\n                }\n            },\n            \"required\": [\n             "
            + "   \"city\"\n            ]\n        }\n    }\n}\n\nWeather in Paris?<|eot_id|><|start_header_id|>"
            + "assistant<|end_header_id|>\n\n",
        "llama32/tools":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge "
            + "Date: December 2023\nToday Date: 15 Sep 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
            + "\n\nGiven the following functions, please respond with a JSON for a function call with its proper "
            + "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
            + "\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n    "
            + "\"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        "
            + "\"description\": \"Current weather in a city.\",\n        \"parameters\": {\n            \"type\": "
            + "\"object\",\n            \"properties\": {\n                \"city\": {\n                    "
            + "\"type\": \"string\"\n                }\n            },\n            \"required\": [\n             "
            + "   \"city\"\n            ]\n        }\n    }\n}\n\nWeather in Paris?<|eot_id|><|start_header_id|>"
            + "assistant<|end_header_id|>\n\n",
        "llama31/toolCall":
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            + "Today Date: 01 Jan 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWeather in "
            + "Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", "
            + "\"parameters\": {\"city\": \"Paris\"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n"
            + "\"{\\\"temp_c\\\": 18}\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    ]
}
